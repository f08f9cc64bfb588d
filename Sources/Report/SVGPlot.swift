import Foundation
import Results

/// Small, dependency-free SVG chart primitives for the self-contained HTML report.
///
/// Training steps span 0 … 10⁵ and matter most early, so the step axis is logarithmic. Step 0
/// has no logarithm: it gets its own tick labelled "0" a fixed gap left of the first positive
/// step, with a break mark (//) on the axis between them, so the untrained model stays visible
/// without pretending 0 sits a decade below 1.
enum SVG {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func number(_ value: Double) -> String { String(format: "%.2f", value) }

    /// A deterministic element id from `text` (FNV-1a), so gradients of different charts on one
    /// page don't collide and the same metrics give the same HTML.
    static func identifier(_ prefix: String, _ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return prefix + String(hash, radix: 16)
    }

    /// Width in pixels of `text` at the 12 px chart font, roughly (for laying out legends).
    static func approximateWidth(_ text: String) -> Double { Double(text.count) * 7 }

    /// Short tick label: 1, 20, 2.5, 0.001, 1e+06, 3k for steps.
    static func tickLabel(_ value: Double) -> String {
        if value == 0 { return "0" }
        guard value.isFinite else { return String(value) }
        let magnitude = abs(value)
        if magnitude >= 1e5 || magnitude < 1e-3 {
            // 1e5, 2.5e-4 (not %g's 0.0001, which is as wide as the axis margin)
            var exponent = Int(floor(log10(magnitude)))
            var mantissa = value / pow(10, Double(exponent))
            if abs((mantissa * 100).rounded()) >= 1000 { mantissa /= 10; exponent += 1 }
            return String(format: "%.3g", mantissa) == "1" ? "1e\(exponent)" : String(format: "%.3ge%d", mantissa, exponent)
        }
        return String(format: "%g", value)
    }

    static func stepLabel(_ step: Double) -> String {
        if step >= 1000, step.truncatingRemainder(dividingBy: 1000) == 0 { return String(format: "%gk", step / 1000) }
        return String(format: "%g", step)
    }

    /// Viridis, sampled at nine points and interpolated linearly (t in [0, 1]).
    static func viridis(_ t: Double) -> String {
        let anchors: [(Double, Double, Double)] = [
            (0x44, 0x01, 0x54), (0x47, 0x2c, 0x7a), (0x3b, 0x51, 0x8b), (0x2c, 0x71, 0x8e), (0x21, 0x90, 0x8d),
            (0x27, 0xad, 0x81), (0x5c, 0xc8, 0x63), (0xaa, 0xdc, 0x32), (0xfd, 0xe7, 0x25),
        ]
        let clamped = t.isFinite ? min(max(t, 0), 1) : 0
        let position = clamped * Double(anchors.count - 1)
        let index = min(Int(position), anchors.count - 2)
        let f = position - Double(index)
        let (a, b) = (anchors[index], anchors[index + 1])
        func mix(_ x: Double, _ y: Double) -> Int { Int((x + (y - x) * f).rounded()) }
        return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Perceived brightness of a viridis sample, to choose black or white text on it.
    static func isLight(_ t: Double) -> Bool { t > 0.55 }

    /// A colour per series: ordered data (layers) get viridis stops (darkest to yellow-green,
    /// skipping the palest end); unordered series get a categorical palette.
    static func seriesColor(index: Int, count: Int, ordered: Bool) -> String {
        if ordered {
            return viridis(count <= 1 ? 0 : 0.88 * Double(index) / Double(count - 1))
        }
        let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
        return palette[index % palette.count]
    }
}

/// Maps training steps to x pixels (see `SVG` for the step-0 convention).
struct StepAxis {
    let left: Double
    let right: Double
    let hasZero: Bool
    let logMin: Double
    let logMax: Double
    static let zeroGap = 42.0

    init(steps: [Int], left: Double, right: Double) {
        self.left = left
        self.right = right
        hasZero = steps.contains(0)
        let positive = steps.filter { $0 > 0 }.map(Double.init)
        let low = positive.min().map(log10) ?? 0
        let high = positive.max().map(log10) ?? 1
        let pad = max(0.04 * (high - low), 0.05)
        logMin = low - pad
        logMax = max(high + pad, logMin + 0.5)
    }

    private var positiveLeft: Double { left + (hasZero ? Self.zeroGap : 0) }

    func x(_ step: Int) -> Double { x(Double(step)) }

    /// Ticks reach 10^19, past Int.max: positions are computed in Double.
    func x(_ step: Double) -> Double {
        if step <= 0 { return left + 8 }
        let t = (log10(step) - logMin) / (logMax - logMin)
        return positiveLeft + t * (right - positiveLeft)
    }

    /// (step value, label or nil for a minor tick).
    var ticks: [(Double, String?)] {
        var result: [(Double, String?)] = []
        let decades = logMax - logMin
        let labelled: Set<Int> = decades < 1.2 ? [1, 2, 3, 5, 7] : decades < 2.5 ? [1, 2, 5] : [1]
        for exponent in Int(floor(logMin))...Int(ceil(logMax)) {
            for multiple in 1...9 {
                let value = Double(multiple) * pow(10, Double(exponent))
                let position = log10(value)
                guard position >= logMin - 1e-9, position <= logMax + 1e-9, value >= 1 else { continue }
                result.append((value, labelled.contains(multiple) ? SVG.stepLabel(value) : nil))
            }
        }
        return result
    }

    /// Axis line, ticks, labels and the 0-break, for a plot whose x axis sits at `y`.
    func render(y: Double, title: String) -> String {
        var svg = "<g class=\"axis\">"
        svg += "<line x1=\"\(SVG.number(positiveLeft - (hasZero ? 6 : 0)))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(right))\" y2=\"\(SVG.number(y))\"/>"
        for (value, label) in ticks {
            let x = self.x(value)
            let length = label == nil ? 3.0 : 6.0
            svg += "<line x1=\"\(SVG.number(x))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(x))\" y2=\"\(SVG.number(y + length))\"/>"
            if let label {
                svg += "<text x=\"\(SVG.number(x))\" y=\"\(SVG.number(y + 19))\" text-anchor=\"middle\">\(label)</text>"
            }
        }
        if hasZero {
            let x0 = self.x(0)
            svg += "<line x1=\"\(SVG.number(left))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(x0 + 10))\" y2=\"\(SVG.number(y))\"/>"
            svg += "<line x1=\"\(SVG.number(x0))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(x0))\" y2=\"\(SVG.number(y + 6))\"/>"
            svg += "<text x=\"\(SVG.number(x0))\" y=\"\(SVG.number(y + 19))\" text-anchor=\"middle\">0</text>"
            // Break mark: two short slashes between the 0 tick and the log-scaled part.
            let breakX = (x0 + positiveLeft) / 2 + 2
            for offset in [-3.0, 3.0] {
                svg += "<line class=\"break\" x1=\"\(SVG.number(breakX + offset - 3))\" y1=\"\(SVG.number(y + 5))\" x2=\"\(SVG.number(breakX + offset + 3))\" y2=\"\(SVG.number(y - 5))\"/>"
            }
        }
        svg += "<text class=\"axis-title\" x=\"\(SVG.number((left + right) / 2))\" y=\"\(SVG.number(y + 38))\" text-anchor=\"middle\">\(SVG.escape(title))</text>"
        return svg + "</g>"
    }
}

/// Maps values to y pixels, linear or logarithmic, with "nice" ticks.
struct ValueAxis {
    let top: Double
    let bottom: Double
    let logarithmic: Bool
    let low: Double
    let high: Double

    /// `includeZero`: a linear axis that starts at (or below) 0, for counts and accuracies, so an
    /// all-zero series sits on the floor of the plot instead of mid-way up a ±0.5 range.
    init(values: [Double], top: Double, bottom: Double, preferLog: Bool, includeZero: Bool = false) {
        self.top = top
        self.bottom = bottom
        let finite = values.filter(\.isFinite)
        var minimum = finite.min() ?? 0
        var maximum = finite.max() ?? 1
        if includeZero {
            minimum = min(minimum, 0)
            if maximum <= 0 { maximum = 1 }
        }
        let useLog = !includeZero && preferLog && minimum > 0 && maximum / minimum > 20
        logarithmic = useLog
        if useLog {
            low = floor(log10(minimum) * 4) / 4
            high = max(ceil(log10(maximum) * 4) / 4, low + 0.25)
        } else {
            if minimum == maximum { minimum -= abs(minimum) * 0.1 + 0.5; maximum += abs(maximum) * 0.1 + 0.5 }
            // Each end divided before subtracting: ±1e308 must not overflow into an infinite span.
            let step = Self.niceStep(maximum / 5 - minimum / 5)
            low = floor(minimum / step) * step
            high = ceil(maximum / step) * step
        }
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let exponent = floor(log10(raw))
        let fraction = raw / pow(10, exponent)
        let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10
        return nice * pow(10, exponent)
    }

    func y(_ value: Double) -> Double {
        let position = logarithmic ? log10(max(value, 1e-300)) : value
        let t = (position - low) / (high - low)
        return bottom - t * (bottom - top)
    }

    var ticks: [Double] {
        if logarithmic {
            var result: [Double] = []
            let decades = high - low
            let multiples: [Double] = decades < 2.6 ? [1, 2, 5] : decades < 4 ? [1, 3] : [1]
            for exponent in Int(floor(low))...Int(ceil(high)) {
                for multiple in multiples {
                    let value = multiple * pow(10, Double(exponent))
                    if log10(value) >= low - 1e-9 && log10(value) <= high + 1e-9 { result.append(value) }
                }
            }
            return result
        }
        let step = Self.niceStep(high / 5 - low / 5)
        var result: [Double] = []
        var value = low
        // Bounded, and stops if adding the step no longer moves the value (huge magnitudes).
        while value <= high + step * 1e-6, result.count < 100 {
            result.append(abs(value) < step * 1e-9 ? 0 : value)
            let next = value + step
            guard next > value else { break }
            value = next
        }
        return result
    }

    func render(left: Double, right: Double, title: String) -> String {
        var svg = "<g class=\"axis\">"
        svg += "<line x1=\"\(SVG.number(left))\" y1=\"\(SVG.number(top))\" x2=\"\(SVG.number(left))\" y2=\"\(SVG.number(bottom))\"/>"
        for value in ticks {
            let y = self.y(value)
            svg += "<line class=\"grid\" x1=\"\(SVG.number(left))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(right))\" y2=\"\(SVG.number(y))\"/>"
            svg += "<line x1=\"\(SVG.number(left - 5))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(left))\" y2=\"\(SVG.number(y))\"/>"
            svg += "<text x=\"\(SVG.number(left - 8))\" y=\"\(SVG.number(y + 4))\" text-anchor=\"end\">\(SVG.tickLabel(value))</text>"
        }
        let middle = (top + bottom) / 2
        let label = title + (logarithmic ? " (log scale)" : "")
        svg += "<text class=\"axis-title\" transform=\"translate(\(SVG.number(left - 52)),\(SVG.number(middle))) rotate(-90)\" text-anchor=\"middle\">\(SVG.escape(label))</text>"
        return svg + "</g>"
    }
}

/// One named line of (step, value) points.
struct Series {
    var label: String
    var points: [(step: Int, value: Double)]
}

/// A line chart of values against training step.
///
/// The SVG has a fixed viewBox and scales to its container (the report's grid cells are about
/// `width` pixels wide, so text stays near its nominal size). A single series gets no legend;
/// more layers than fit as legend entries get a colour bar from the first to the last.
struct LineChart {
    var title: String
    var yTitle: String
    var series: [Series]
    /// Colour series along viridis (for layers) rather than a categorical palette.
    var ordered: Bool
    var preferLogY: Bool
    var includeZero = false
    /// Steps the x axis spans besides the data's own (the report passes every step of the sweep so
    /// all charts share one step axis, e.g. `msd`, which has no step 0, keeps the 0 tick).
    var axisSteps: [Int] = []
    var width = 600.0
    var height = 330.0
    /// A horizontal reference line (e.g. kurtosis 3 of a normal distribution), dashed and labelled.
    var reference: (value: Double, label: String)? = nil

    static let legendSpacing = 18.0

    func render() -> String {
        let (left, top, bottom) = (76.0, 34.0, height - 56)
        let maximumEntries = Int((bottom - top) / Self.legendSpacing)
        let compactLegend = ordered && series.count > maximumEntries
        let legendWidth: Double
        if series.count <= 1 {
            legendWidth = 0
        } else if compactLegend {
            legendWidth = 44 + (series.map { SVG.approximateWidth($0.label) }.max() ?? 0)
        } else {
            legendWidth = min(max(48 + (series.map { SVG.approximateWidth($0.label) }.max() ?? 0), 84), 190)
        }
        let right = width - 22 - legendWidth
        let steps = Array(Set(series.flatMap { $0.points.map(\.step) } + axisSteps)).sorted()
        let xAxis = StepAxis(steps: steps, left: left, right: right)
        let yAxis = ValueAxis(values: series.flatMap { $0.points.map(\.value) } + (reference.map { [$0.value] } ?? []), top: top, bottom: bottom,
                              preferLog: preferLogY, includeZero: includeZero)
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(SVG.escape(title))\">"
        svg += "<text class=\"chart-title\" x=\"\(SVG.number(left))\" y=\"20\">\(SVG.escape(title))</text>"
        svg += yAxis.render(left: left, right: right, title: yTitle)
        svg += xAxis.render(y: bottom, title: "training step (log scale)")
        if let reference, !yAxis.logarithmic || reference.value > 0 {
            let y = SVG.number(yAxis.y(reference.value))
            svg += "<g class=\"reference\"><line x1=\"\(SVG.number(left))\" y1=\"\(y)\" x2=\"\(SVG.number(right))\" y2=\"\(y)\" stroke=\"#d93025\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
            svg += "<text x=\"\(SVG.number(right - 4))\" y=\"\(SVG.number(yAxis.y(reference.value) - 5))\" text-anchor=\"end\" style=\"fill:#d93025\">\(SVG.escape(reference.label))</text></g>"
        }
        for (index, line) in series.enumerated() {
            let color = SVG.seriesColor(index: index, count: series.count, ordered: ordered)
            let points = line.points.filter { $0.value.isFinite && (!yAxis.logarithmic || $0.value > 0) }.sorted { $0.step < $1.step }
            let path = points.map { "\(SVG.number(xAxis.x($0.step))),\(SVG.number(yAxis.y($0.value)))" }.joined(separator: " ")
            svg += "<g class=\"series\"><polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>"
            for point in points {
                svg += "<circle cx=\"\(SVG.number(xAxis.x(point.step)))\" cy=\"\(SVG.number(yAxis.y(point.value)))\" r=\"3\" fill=\"\(color)\">"
                svg += "<title>\(SVG.escape(line.label)), step \(point.step): \(SVG.escape(MetricsCSV.format(point.value)))</title></circle>"
            }
            svg += "</g>"
            if series.count > 1 && !compactLegend {
                let legendY = top + 6 + Double(index) * Self.legendSpacing
                svg += "<g class=\"legend\"><line x1=\"\(SVG.number(right + 16))\" y1=\"\(SVG.number(legendY))\" x2=\"\(SVG.number(right + 38))\" y2=\"\(SVG.number(legendY))\" stroke=\"\(color)\" stroke-width=\"3\"/>"
                svg += "<text x=\"\(SVG.number(right + 44))\" y=\"\(SVG.number(legendY + 4))\">\(SVG.escape(line.label))</text></g>"
            }
        }
        if compactLegend { svg += colourBarLegend(x: right + 18, top: top, bottom: bottom) }
        return svg + "</svg>"
    }

    /// Many layers: a vertical bar running through the series colours, first series at the bottom.
    private func colourBarLegend(x: Double, top: Double, bottom: Double) -> String {
        let id = SVG.identifier("legend", title + yTitle)
        var svg = "<g class=\"legend\"><defs><linearGradient id=\"\(id)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for index in series.indices {
            let offset = series.count <= 1 ? 0 : Double(index) / Double(series.count - 1)
            svg += "<stop offset=\"\(SVG.number(offset))\" stop-color=\"\(SVG.seriesColor(index: index, count: series.count, ordered: true))\"/>"
        }
        svg += "</linearGradient></defs>"
        svg += "<rect x=\"\(SVG.number(x))\" y=\"\(SVG.number(top))\" width=\"14\" height=\"\(SVG.number(bottom - top))\" fill=\"url(#\(id))\" stroke=\"#444\" stroke-width=\"0.5\"/>"
        if let first = series.first, let last = series.last {
            svg += "<text x=\"\(SVG.number(x + 20))\" y=\"\(SVG.number(bottom))\">\(SVG.escape(first.label))</text>"
            svg += "<text x=\"\(SVG.number(x + 20))\" y=\"\(SVG.number(top + 10))\">\(SVG.escape(last.label))</text>"
        }
        return svg + "</g>"
    }
}

/// How a heatmap maps values to colours (viridis) and labels its colour bar.
enum HeatmapColour {
    /// Linear on the fixed range [0, 1] (CKA), so heatmaps compare with each other; large cells
    /// print their value.
    case unit(label: String)
    /// log10 from `low` to `high` (powers of ten, ticks at every decade): values below `low` get
    /// the darkest colour, exact zeros are drawn white (no elements) instead.
    case logarithmic(low: Double, high: Double, label: String)

    var label: String {
        switch self {
        case .unit(let label), .logarithmic(_, _, let label): return label
        }
    }

    /// Position on the colour bar, 0 … 1.
    func position(_ value: Double) -> Double {
        switch self {
        case .unit: return min(max(value, 0), 1)
        case .logarithmic(let low, let high, _):
            guard value > 0 else { return 0 }
            return min(max((log10(value) - log10(low)) / (log10(high) - log10(low)), 0), 1)
        }
    }

    /// (position on the bar, label).
    var ticks: [(Double, String)] {
        switch self {
        case .unit: return stride(from: 0.0, through: 1.0, by: 0.25).map { ($0, String(format: "%g", $0)) }
        case .logarithmic(let low, let high, _):
            let (a, b) = (Int(log10(low).rounded()), Int(log10(high).rounded()))
            guard b > a else { return [(0, SVG.tickLabel(low))] }
            let every = max(1, Int((Double(b - a) / 6).rounded(.up)))
            return stride(from: b, through: a, by: -every).map { (Double($0 - a) / Double(b - a), SVG.tickLabel(pow(10, Double($0)))) }
        }
    }
}

/// A row × step heatmap with a colour bar: by default layer × step of a value in [0, 1] (CKA);
/// weight histograms use it for bin × step with a logarithmic colour scale.
struct Heatmap {
    var title: String
    /// value[row][step]; rows are drawn bottom (smallest key) to top.
    var cells: [Int: [Int: Double]]
    /// 600 for a grid cell; the report doubles it (and spans the row) when there are many steps.
    var width = 600.0
    var height = 330.0
    /// The row axis's title and what a row is called in tooltips.
    var rowTitle = "layer"
    var rowName: (Int) -> String = { "layer \($0)" }
    /// Ticks on row boundaries (position in rows above the bottom edge, label), e.g. bin edges;
    /// empty: each row is labelled with its key, centred (thinned when rows are thin).
    var rowEdgeTicks: [(position: Double, label: String)] = []
    var colour = HeatmapColour.unit(label: "CKA")
    /// Left margin (wider for long row labels).
    var left = 78.0

    func render() -> String {
        let rows = cells.keys.sorted()
        let steps = Array(Set(cells.values.flatMap(\.keys))).sorted()
        let (left, top) = (self.left, 34.0)
        let right = width - 110, bottom = height - 62
        let cellWidth = (right - left) / Double(max(steps.count, 1))
        let cellHeight = (bottom - top) / Double(max(rows.count, 1))
        let printValues: Bool
        if case .unit = colour { printValues = cellWidth >= 34 && cellHeight >= 16 } else { printValues = false }
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(SVG.escape(title))\">"
        svg += "<text class=\"chart-title\" x=\"\(SVG.number(left))\" y=\"20\">\(SVG.escape(title))</text>"
        var labelWidth = 0.0
        // Layer 0 (or the lowest bin) at the bottom, as in a picture of the network.
        for (index, row) in rows.enumerated() {
            let y = bottom - Double(index + 1) * cellHeight
            for (column, step) in steps.enumerated() {
                let x = left + Double(column) * cellWidth
                let frame = "x=\"\(SVG.number(x))\" y=\"\(SVG.number(y))\" width=\"\(SVG.number(cellWidth))\" height=\"\(SVG.number(cellHeight))\""
                let name = SVG.escape(rowName(row))
                guard let value = cells[row]?[step] else {
                    svg += "<rect class=\"empty\" \(frame)><title>\(name), step \(step): no value</title></rect>"
                    continue
                }
                let t = colour.position(value)
                let fill = { if case .logarithmic = colour, value == 0 { return "#fff" } else { return SVG.viridis(t) } }()
                svg += "<rect \(frame) fill=\"\(fill)\"><title>\(name), step \(step): \(SVG.escape(MetricsCSV.format(value)))</title></rect>"
                if printValues {
                    let color = SVG.isLight(t) ? "#000" : "#fff"
                    svg += "<text class=\"cell\" x=\"\(SVG.number(x + cellWidth / 2))\" y=\"\(SVG.number(y + cellHeight / 2 + 4))\" text-anchor=\"middle\" style=\"fill:\(color)\">\(String(format: "%.2f", value))</text>"
                }
            }
            // Row labels: every row while they fit, else thinned (deep models).
            if rowEdgeTicks.isEmpty, index % max(1, Int((14 / cellHeight).rounded(.up))) == 0 {
                labelWidth = max(labelWidth, SVG.approximateWidth("\(row)"))
                svg += "<text x=\"\(SVG.number(left - 8))\" y=\"\(SVG.number(y + cellHeight / 2 + 4))\" text-anchor=\"end\">\(row)</text>"
            }
        }
        for tick in rowEdgeTicks {
            let y = bottom - tick.position * cellHeight
            labelWidth = max(labelWidth, SVG.approximateWidth(tick.label))
            svg += "<line class=\"axis-line\" x1=\"\(SVG.number(left - 5))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(left))\" y2=\"\(SVG.number(y))\"/>"
            svg += "<text x=\"\(SVG.number(left - 8))\" y=\"\(SVG.number(y + 4))\" text-anchor=\"end\">\(SVG.escape(tick.label))</text>"
        }
        // Step labels: every column while they fit, else thinned.
        let every = max(1, Int((38 / cellWidth).rounded(.up)))
        for (column, step) in steps.enumerated() where column % every == 0 {
            let x = left + (Double(column) + 0.5) * cellWidth
            svg += "<text x=\"\(SVG.number(x))\" y=\"\(SVG.number(bottom + 16))\" text-anchor=\"middle\">\(SVG.stepLabel(Double(step)))</text>"
        }
        svg += "<text class=\"axis-title\" x=\"\(SVG.number((left + right) / 2))\" y=\"\(SVG.number(bottom + 38))\" text-anchor=\"middle\">training step (one column per checkpoint)</text>"
        let titleX = left - max(40, labelWidth + 22)
        svg += "<text class=\"axis-title\" transform=\"translate(\(SVG.number(titleX)),\(SVG.number((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(SVG.escape(rowTitle))</text>"
        // Colour bar.
        let barX = right + 24, barWidth = 16.0
        let gradientID = SVG.identifier("grad", title)
        svg += "<defs><linearGradient id=\"\(gradientID)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for stop in 0...8 {
            let t = Double(stop) / 8
            svg += "<stop offset=\"\(SVG.number(t))\" stop-color=\"\(SVG.viridis(t))\"/>"
        }
        svg += "</linearGradient></defs>"
        svg += "<rect x=\"\(SVG.number(barX))\" y=\"\(SVG.number(top))\" width=\"\(SVG.number(barWidth))\" height=\"\(SVG.number(bottom - top))\" fill=\"url(#\(gradientID))\" stroke=\"#444\" stroke-width=\"0.5\"/>"
        for (position, label) in colour.ticks {
            let y = bottom - position * (bottom - top)
            svg += "<line class=\"axis-line\" x1=\"\(SVG.number(barX + barWidth))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(barX + barWidth + 4))\" y2=\"\(SVG.number(y))\"/>"
            svg += "<text x=\"\(SVG.number(barX + barWidth + 7))\" y=\"\(SVG.number(y + 4))\">\(SVG.escape(label))</text>"
        }
        // The colour bar's label runs up its right side, clear of the step labels however long it is.
        svg += "<text class=\"axis-title\" transform=\"translate(\(SVG.number(barX + barWidth + 58)),\(SVG.number((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(SVG.escape(colour.label))</text>"
        if case .logarithmic = colour {
            svg += "<text class=\"axis-title\" x=\"\(SVG.number(barX + barWidth / 2))\" y=\"\(SVG.number(bottom + 20))\" text-anchor=\"middle\">(log; white = 0)</text>"
        }
        return svg + "</svg>"
    }
}
