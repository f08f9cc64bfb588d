import Evaluation

/// A problem with the data or files a command was given (a missing file, a token file that is
/// not ids, a value the data rules out), reported as `Error: <description>`.
///
/// ArgumentParser prints the usage block only for `ValidationError`, which is for arguments that
/// are wrong whatever the data; every other error, this one and the libraries' own
/// (`FormatError`, `NeoXError`, `CorpusError`, `TokenizerError`, `EvalError`, `SweepError`,
/// `ResultsError`), is printed as its description alone, with a non-zero exit.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// An evaluator error in the command line's terms: prefixed with the flag behind the setting
    /// it is about (the library names its settings, never the flags).
    init(_ error: EvalError, flags: [EvalError.Setting: String]) {
        if let setting = error.setting, let flag = flags[setting] {
            description = "\(flag): \(error.message)"
        } else {
            description = error.message
        }
    }
}
