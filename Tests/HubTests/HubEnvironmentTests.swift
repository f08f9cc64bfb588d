import Formats
import Foundation
import Hub
import XCTest

/// The environment variables, with huggingface_hub's precedence and defaults, and the default file
/// selection: no server needed.
final class HubEnvironmentTests: XCTestCase {
    func testCacheTokenEndpointAndOfflineFollowHuggingFaceHub() throws {
        let home = try scratchDirectory(self)
        var environment = ["HOME": home.path]
        XCTAssertEqual(try HubEnvironment(environment: environment).cacheRoot.path, home.path + "/.cache/huggingface/hub")
        XCTAssertEqual(try HubEnvironment(environment: environment).endpoint.absoluteString, "https://huggingface.co")
        environment["XDG_CACHE_HOME"] = "/xdg"
        XCTAssertEqual(try HubEnvironment(environment: environment).cacheRoot.path, "/xdg/huggingface/hub")
        environment["HF_HOME"] = home.appendingPathComponent("hf").path
        XCTAssertEqual(try HubEnvironment(environment: environment).cacheRoot.path, home.path + "/hf/hub")
        environment["HUGGINGFACE_HUB_CACHE"] = "/old"
        XCTAssertEqual(try HubEnvironment(environment: environment).cacheRoot.path, "/old")
        environment["HF_HUB_CACHE"] = "/new"
        XCTAssertEqual(try HubEnvironment(environment: environment).cacheRoot.path, "/new")
        // The engine's locator reads the same cache.
        XCTAssertEqual(ModelLocator.cacheRoot(environment: environment).path, "/new")

        // Token: HF_TOKEN, else $HF_HOME/token (as huggingface-cli login writes it).
        XCTAssertNil(try HubEnvironment(environment: environment).token)
        try FileManager.default.createDirectory(at: home.appendingPathComponent("hf"), withIntermediateDirectories: true)
        try "hf_file_token\n".write(to: home.appendingPathComponent("hf/token"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try HubEnvironment(environment: environment).token, "hf_file_token")
        environment["HF_TOKEN"] = "hf_env_token"
        XCTAssertEqual(try HubEnvironment(environment: environment).token, "hf_env_token")

        environment["HF_ENDPOINT"] = "http://127.0.0.1:9/"
        XCTAssertEqual(try HubEnvironment(environment: environment).endpoint.absoluteString, "http://127.0.0.1:9")
        XCTAssertFalse(try HubEnvironment(environment: environment).offline)
        for value in ["1", "ON", "yes", "True"] {
            environment["HF_HUB_OFFLINE"] = value
            XCTAssertTrue(try HubEnvironment(environment: environment).offline, value)
        }
        environment["HF_HUB_DOWNLOAD_TIMEOUT"] = "1e300"
        XCTAssertThrowsError(try HubEnvironment(environment: environment)) { error in
            XCTAssertTrue("\(error)".contains("HF_HUB_DOWNLOAD_TIMEOUT"), "\(error)")
        }
        XCTAssertThrowsError(try HubEnvironment(environment: ["HF_ENDPOINT": "ftp://x"])) { error in
            XCTAssertTrue("\(error)".contains("HF_ENDPOINT"), "\(error)")
        }
    }

    func testDefaultSelectionTakesOneWeightLayout() throws {
        func files(_ names: [String]) -> [HubFile] { names.map { HubFile(path: $0, size: 1) } }
        let both = files(["config.json", "README.md", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "training_args.bin"])
        XCTAssertEqual(HubFileSelection.defaultFiles(both).map(\.path), ["config.json", "tokenizer.json", "model.safetensors"])
        let sharded = files(["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                             "model-00002-of-00002.safetensors", "pytorch_model.bin"])
        XCTAssertEqual(HubFileSelection.defaultFiles(sharded).map(\.path),
                       ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        let bin = files(["config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"])
        XCTAssertEqual(HubFileSelection.weights(bin)?.layout, .shardedPytorchBin)
        XCTAssertEqual(HubFileSelection.defaultFiles(files(["config.json", "pytorch_model.bin"])).map(\.path), ["config.json", "pytorch_model.bin"])
        XCTAssertNil(HubFileSelection.weights(files(["config.json", "README.md"])))
        XCTAssertEqual(try HubFileSelection.matching(["*.safetensors", "config.json"], in: sharded, revision: "main").map(\.path),
                       ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "config.json"])
        XCTAssertThrowsError(try HubFileSelection.matching(["nope.json"], in: sharded, revision: "step7")) { error in
            XCTAssertEqual((error as? HubError)?.kind, .fileNotFound)
            XCTAssertTrue("\(error)".contains("nope.json") && "\(error)".contains("step7"), "\(error)")
        }
    }

    func testRepositoryIDsAreChecked() {
        XCTAssertEqual(try HubRepository("EleutherAI/pythia-160m").cacheFolderName, "models--EleutherAI--pythia-160m")
        for bad in ["pythia", "a/b/c", "../x", "a/..", "a/b c", ""] {
            XCTAssertThrowsError(try HubRepository(bad), bad)
        }
    }
}
