/// Sites and metric names of the generation probes (`memorization`, `lambada_generation`).
/// Part of the file format: never rename one.
extension SweepNames {
    /// Site of the memorization probe (Biderman et al. 2023) on training rows.
    public static let memorizationSite = "memorization"
    /// Site of the LAMBADA generation probe (Nicolini et al., "The Garden of Forking Paths").
    public static let lambadaGenerationSite = "lambada_generation"
}

extension MetricName {
    /// Mean over rows of the fraction of generated continuation tokens equal to the true ones.
    public static let memorizationScore = "memorization_score"
    /// Fraction of rows whose whole continuation is reproduced (score 1).
    public static let memorizedFraction = "memorized_fraction"
    /// Rows scored.
    public static let rowCount = "row_count"
    /// Fraction of LAMBADA examples whose greedy generation equals the target's tokens.
    public static let generationAcc = "generation_acc"
    /// exp(−mean log-probability) of the generated tokens under the model generating them.
    public static let generationPerplexity = "generation_perplexity"
    /// Causal unmasking with k/(K+1) of the sentence given: token agreement with the original.
    public static func unmaskAgreement(_ k: Int) -> String { "unmask_agreement_k\(k)" }
    /// Causal unmasking: perplexity of the generated tokens.
    public static func unmaskPerplexity(_ k: Int) -> String { "unmask_perplexity_k\(k)" }
}
