import XCTest
@testable import Tokenizers

final class TokenizersPlaceholderTests: XCTestCase { func testModuleLoads() {} }
