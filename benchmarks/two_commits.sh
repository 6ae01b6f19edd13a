# Sourced by the stage timers (benchmarks/*/run.sh): builds AlexNetCore as it was at a commit,
# as a library under its own module name, so that one program can call two versions in turn.
#
#   source benchmarks/two_commits.sh
#   build_core_at COMMIT MODULE     # -> $work/libMODULE.so and $work/MODULE.swiftmodule
#
# Sets `repo`, `work` (a temporary folder, removed on exit) and `flags` (swiftc's BLAS flags).
repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
blas_include=$(pkg-config --cflags-only-I openblas | sed 's/^-I//; s/ *$//')
blas_lib=$(pkg-config --libs-only-L openblas | sed 's/^-L//; s/ *$//')
flags=(-O -wmo -I "$repo/Sources/CBLAS" -Xcc "-I$blas_include" -L "$blas_lib")

build_core_at() {
    local commit=$1 module=$2
    mkdir -p "$work/$module"
    git -C "$repo" archive "$commit" Sources/AlexNetCore | tar -x -C "$work/$module"
    swiftc "${flags[@]}" -parse-as-library -enable-library-evolution -suppress-warnings -emit-module -emit-library \
        -module-name "$module" -emit-module-path "$work/$module.swiftmodule" "$work/$module"/Sources/AlexNetCore/*.swift \
        -lopenblas -o "$work/lib$module.so"
}
