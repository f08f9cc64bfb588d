import XCTest
@testable import Probes

final class ProbesPlaceholderTests: XCTestCase { func testModuleLoads() {} }
