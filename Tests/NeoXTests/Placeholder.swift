import XCTest
@testable import NeoX

final class NeoXPlaceholderTests: XCTestCase { func testModuleLoads() {} }
