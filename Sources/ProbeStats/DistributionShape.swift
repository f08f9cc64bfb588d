import Foundation

/// How a weight tensor's elements are distributed: maximum-likelihood Gaussian and logistic fits,
/// their mean log-likelihoods per element, and quantiles of the data against both fits (QQ), so a
/// "Gaussian at initialisation → heavy-tailed" transition shows as curves over training.
///
/// - Gaussian MLE: μ = mean, σ = population std; mean log-likelihood −½ln(2πσ²) − ½.
/// - Logistic MLE (density e^{−z} / (s(1 + e^{−z})²), z = (x − μ)/s), as `scipy.stats.logistic.fit`
///   finds it: Newton's method on the score equations Σ tanh(zᵢ/2) = 0 and Σ zᵢ tanh(zᵢ/2) = n,
///   started from the moment estimates (mean, σ·√3/π), steps halved until the likelihood rises.
/// - QQ: at each probability p of `probabilities`, the empirical quantile (numpy's linear
///   interpolation) and the fitted Gaussian's μ + σΦ⁻¹(p) and logistic's μ + s·ln(p/(1 − p)).
/// All in float64. Nil for fewer than 2 elements or a constant tensor (a LayerNorm weight at step 0).
public struct DistributionShape: Sendable, Equatable {
    public static let probabilities: [Double] = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]

    public var gaussianMean: Double
    public var gaussianStd: Double
    public var gaussianLogLikelihood: Double
    public var logisticLocation: Double
    public var logisticScale: Double
    public var logisticLogLikelihood: Double
    /// Quantiles at `probabilities`.
    public var empiricalQuantiles: [Double]
    public var gaussianQuantiles: [Double]
    public var logisticQuantiles: [Double]

    /// The logistic fits better (higher mean log-likelihood): heavier tails than a Gaussian.
    public var logisticFitsBetter: Bool { logisticLogLikelihood > gaussianLogLikelihood }

    public init?(values: [Float]) {
        guard values.count >= 2 else { return nil }
        let x = values.map(Double.init)
        let moments = CentralMoments(values: x)
        let sigma = moments.variance.squareRoot()
        guard sigma > 0, sigma.isFinite else { return nil }
        gaussianMean = moments.mean
        gaussianStd = sigma
        gaussianLogLikelihood = -0.5 * log(2 * Double.pi * sigma * sigma) - 0.5
        let (location, scale) = Self.fitLogistic(x, mean: moments.mean, std: sigma)
        logisticLocation = location
        logisticScale = scale
        logisticLogLikelihood = Self.logisticLogLikelihood(x, location: location, scale: scale) / Double(x.count)
        let sorted = x.sorted()
        empiricalQuantiles = Self.probabilities.map { Quantiles.linear(sorted: sorted, $0) }
        gaussianQuantiles = Self.probabilities.map { moments.mean + sigma * Self.normalQuantile($0) }
        logisticQuantiles = Self.probabilities.map { location + scale * log($0 / (1 - $0)) }
    }

    /// Σ log f(xᵢ; μ, s) of the logistic density (symmetric, so written with |z| for stability).
    static func logisticLogLikelihood(_ x: [Double], location: Double, scale: Double) -> Double {
        var total = 0.0
        for value in x {
            let a = abs((value - location) / scale)
            total += -a - 2 * log1p(exp(-a))
        }
        return total - Double(x.count) * log(scale)
    }

    /// The logistic MLE (μ, s) by damped Newton iteration on the score equations.
    static func fitLogistic(_ x: [Double], mean: Double, std: Double) -> (Double, Double) {
        var mu = mean, s = std * 3.0.squareRoot() / Double.pi
        var best = logisticLogLikelihood(x, location: mu, scale: s)
        let n = Double(x.count)
        for _ in 0..<100 {
            // g = score (scaled by s), J = its Jacobian in (μ, s).
            var g1 = 0.0, g2 = -n, j11 = 0.0, j12 = 0.0, j21 = 0.0, j22 = 0.0
            for value in x {
                let z = (value - mu) / s
                let t = tanh(z / 2)
                let dt = (1 - t * t) / 2
                g1 += t
                g2 += z * t
                j11 -= dt / s
                j12 -= dt * z / s
                let h = t + z * dt
                j21 -= h / s
                j22 -= h * z / s
            }
            let det = j11 * j22 - j12 * j21
            guard det != 0, det.isFinite else { break }
            var dMu = -(g1 * j22 - g2 * j12) / det
            var dS = -(j11 * g2 - j21 * g1) / det
            var improved = false
            for _ in 0..<60 {
                let candidateS = s + dS
                if candidateS > 0 {
                    let value = logisticLogLikelihood(x, location: mu + dMu, scale: candidateS)
                    if value >= best {
                        best = value
                        improved = true
                        break
                    }
                }
                dMu /= 2
                dS /= 2
            }
            guard improved else { break }
            mu += dMu
            s += dS
            if abs(dMu) <= 1e-13 * s && abs(dS) <= 1e-13 * s { break }
        }
        return (mu, s)
    }

    /// Φ⁻¹(p), the standard normal quantile: Acklam's rational approximation refined by two
    /// Halley steps on erfc (agrees with scipy's `ndtri` to 1e-12 relative on (0, 1)).
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "normal quantile needs 0 < p < 1")
        // The upper half by symmetry: 1 − p is exact for p ≥ 0.5, and the refinement below is
        // accurate on the lower tail, where Φ(x) is small.
        if p > 0.5 { return -normalQuantile(1 - p) }
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        var x: Double
        if p < 0.02425 {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - 0.02425 {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        for _ in 0..<2 {
            let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
            let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
            x -= u / (1 + x * u / 2)
        }
        return x
    }
}
