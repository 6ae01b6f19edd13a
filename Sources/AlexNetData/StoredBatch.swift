import AlexNetCore

/// How one image of a batch travels from the coordinator to the tower ranks: its label, its
/// stored bytes (the `S x S` square of the paper's preprocessing, or the whole image that
/// `resize` scales), and under the paper's preprocessing the draws of its augmentation (crop
/// corner, mirror flag, colour noise per channel). Each rank makes the float input from it
/// with the coordinator's own assembler, so the input has the same bits on every rank.
///
/// A record is `[label: Int32][x, y, mirrored: Int32, noise: Float x channels][pixels: UInt8]`,
/// padded to 4 bytes; the draws are left out under `resize`.
public struct StoredImageFormat: Sendable, Equatable {
    /// The stored images' side and channels (interleaved, as decoders write them).
    public let side: Int, channels: Int
    /// Whether records carry augmentation draws (the paper's preprocessing).
    public let draws: Bool

    public init(side: Int, channels: Int, draws: Bool) {
        self.side = side
        self.channels = channels
        self.draws = draws
    }

    public init(layout: DataLayout) {
        self.init(side: layout.imageSize, channels: layout.channels, draws: layout.preprocessing == .paper)
    }

    public var imageBytes: Int { side * side * channels }
    var drawBytes: Int { draws ? 12 + 4 * channels : 0 }
    /// Bytes of one image's record.
    public var recordBytes: Int { (4 + drawBytes + imageBytes + 3) / 4 * 4 }
}

/// Records of up to `capacity` images, one after the other (`StoredImageFormat`): what the
/// coordinator packs and the batch transport moves. A view of part of another one's storage
/// (`viewing:`) is where one replica's share is packed among the shares that are scattered.
public final class StoredBatch {
    public let format: StoredImageFormat
    public let capacity: Int
    public let storage: UnsafeMutableRawPointer
    /// What keeps `storage` alive: nil when this batch owns it.
    private let base: AnyObject?
    private let owns: Bool

    public init(format: StoredImageFormat, capacity: Int) {
        self.format = format
        self.capacity = capacity
        storage = .allocate(byteCount: max(capacity * format.recordBytes, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: max(capacity * format.recordBytes, 1))
        (base, owns) = (nil, true)
    }

    /// Records in memory that someone else owns and keeps alive (the prefetch thread's room).
    public init(viewing storage: UnsafeMutableRawPointer, format: StoredImageFormat, capacity: Int) {
        self.format = format
        self.capacity = capacity
        self.storage = storage
        (base, owns) = (nil, false)
    }

    /// Records `first ..< first + capacity` of `base`.
    public init(viewing base: StoredBatch, from first: Int, capacity: Int) {
        precondition(first >= 0 && first + capacity <= base.capacity, "records \(first)..<\(first + capacity) outside \(base.capacity)")
        format = base.format
        self.capacity = capacity
        storage = base.storage + first * base.format.recordBytes
        (self.base, owns) = (base, false)
    }

    deinit { if owns { storage.deallocate() } }

    /// The bytes of the first `n` records.
    public func bytes(_ n: Int) -> UnsafeMutableRawBufferPointer {
        precondition(n <= capacity, "\(n) records in a batch of \(capacity)")
        return UnsafeMutableRawBufferPointer(start: storage, count: n * format.recordBytes)
    }

    private func record(_ b: Int) -> UnsafeMutableRawPointer { storage + b * format.recordBytes }

    /// Writes record `b`: the label, the view's draws (when the format has them) and the image.
    public func write(_ b: Int, label: Int32, view: CropView?, image: UnsafePointer<UInt8>) {
        let r = record(b)
        r.storeBytes(of: label, as: Int32.self)
        if format.draws {
            let v = view!
            r.storeBytes(of: Int32(v.x), toByteOffset: 4, as: Int32.self)
            r.storeBytes(of: Int32(v.y), toByteOffset: 8, as: Int32.self)
            r.storeBytes(of: Int32(v.mirrored ? 1 : 0), toByteOffset: 12, as: Int32.self)
            for k in 0..<format.channels { r.storeBytes(of: v.noise[k], toByteOffset: 16 + 4 * k, as: Float.self) }
        }
        (r + 4 + format.drawBytes).copyMemory(from: image, byteCount: format.imageBytes)
    }

    public func label(_ b: Int) -> Int32 { record(b).load(as: Int32.self) }

    /// Record `b`'s draws (the format must have them).
    public func view(_ b: Int) -> CropView {
        let r = record(b)
        return CropView(x: Int(r.load(fromByteOffset: 4, as: Int32.self)), y: Int(r.load(fromByteOffset: 8, as: Int32.self)),
                        mirrored: r.load(fromByteOffset: 12, as: Int32.self) != 0,
                        noise: (0..<format.channels).map { r.load(fromByteOffset: 16 + 4 * $0, as: Float.self) })
    }

    public func image(_ b: Int) -> UnsafePointer<UInt8> {
        UnsafePointer((record(b) + 4 + format.drawBytes).assumingMemoryBound(to: UInt8.self))
    }
}
