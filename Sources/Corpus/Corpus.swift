// Corpus module: the data side of NeoXProbe.
//
// - `PileReader`: streams Pile-format documents out of `.jsonl`, `.jsonl.zst` and `.txt` files.
// - `IndexedDataset`: memory-mapped Megatron `MMapIndexedDataset` (`PREFIX.bin` + `PREFIX.idx`),
//   the format Pythia's pre-tokenized, pre-shuffled Pile ships in; `TrainingBatch` maps a training
//   step to its rows.
// - `TokenPacker`: joins tokenized documents with EOD into fixed-length model inputs.
// - `LambadaExample` / `LambadaDataset`: the LAMBADA (OpenAI) test set split exactly as
//   lm-evaluation-harness's `lambada_openai` task splits it.
//
// Every failure is a `CorpusError` naming the file (and line, where there is one).
