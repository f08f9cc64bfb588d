// The SHA-256 the tests compare fixture digests with is the library's own (`Formats.SHA256`, which
// the Hub client verifies downloads with); re-exported so every test target keeps spelling it `SHA256`.
@_exported import struct Formats.SHA256
