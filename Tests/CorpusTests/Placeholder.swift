import XCTest
@testable import Corpus

final class CorpusPlaceholderTests: XCTestCase { func testModuleLoads() {} }
