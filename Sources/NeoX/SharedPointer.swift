/// A buffer address handed to the worker threads of one parallel loop: the project's one
/// `@unchecked Sendable` pointer wrapper (instead of laundering addresses through `Int`).
///
/// Sound only under the discipline every use follows: the caller owns the memory and keeps it
/// alive until the parallel loop returns, and workers write disjoint parts of it.
public struct SharedPointer<Pointee>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Pointee>

    public init(_ base: UnsafeMutablePointer<Pointee>) { self.base = base }

    /// A read-only buffer shared for reading (the wrapper never writes through it).
    public init(_ base: UnsafePointer<Pointee>) { self.base = UnsafeMutablePointer(mutating: base) }

    public var readOnly: UnsafePointer<Pointee> { UnsafePointer(base) }
}
