import Foundation

/// Where the command line looks for models and tokenizers it is not given explicitly. The
/// libraries assume no folder layout; these are this tool's deployment conventions, relative to
/// the current directory (a checkout of this repository, with the shared data beside it).
enum SearchPaths {
    /// `Models/NAME` and `Models/ORG--NAME/REVISION` (see Models/README.md).
    static let modelFolders = [URL(fileURLWithPath: "Models", isDirectory: true)]

    /// The repository's `tokenizer/` folder, then the shared GPT-NeoX-20B tokenizer.
    static let tokenizers = ["tokenizer/20B_tokenizer.json", "tokenizer/tokenizer.json",
                             "../shared/tokenizer/20B_tokenizer.json"].map { URL(fileURLWithPath: $0) }
}
