import Foundation

/// Standard output and standard error for code on any thread. glibc's `stdout` and `stderr` are
/// mutable C globals, which Swift 6 does not let any thread read; these reach the same two
/// streams without naming them, and write the same bytes as `fputs`/`fflush` on them did.
public enum Console {
    /// Writes `text` to standard error now, in one `write`, as `fputs` on the unbuffered C
    /// `stderr` did.
    public static func writeError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Sends what `print` has buffered for standard output on its way now. `fflush(NULL)` flushes
    /// every C output stream, standard output among them; the others (an open metrics log) are
    /// only written out sooner.
    public static func flushOutput() {
        fflush(nil)
    }
}
