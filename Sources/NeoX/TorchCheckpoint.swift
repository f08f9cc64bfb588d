import Foundation

/// Reader for PyTorch `torch.save` state dicts (`pytorch_model.bin`: a zip holding a pickle and
/// one file per storage). Placeholder until the pickle reader lands.
public enum TorchCheckpoint {
    public static func read(_ url: URL) throws -> [String: TensorEntry] {
        throw NeoXError("PyTorch .bin checkpoints are not supported yet", file: url)
    }
}
