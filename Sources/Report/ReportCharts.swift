import Foundation
import Results

/// A chart the report can draw and offer for download: its SVG and the numbers it shows as CSV.
protocol ReportChart {
    var title: String { get }
    func render() -> String
    /// The chart's data, one row per drawn value (the download link next to the chart).
    var csv: String { get }
    /// A results file next to report.html holding the data, linked instead of a `data:` URL when
    /// the data is too large to inline (a 256 × 256 correlation matrix).
    var dataFile: String? { get }
}

extension ReportChart {
    var dataFile: String? { nil }
}

enum CSVText {
    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}

extension LineChart: ReportChart {
    var csv: String {
        CSVText.table(["series", "step", yTitle], series.flatMap { line in
            line.points.sorted { $0.step < $1.step }.map { [line.label, String($0.step), MetricsCSV.format($0.value)] }
        })
    }
}

extension Heatmap: ReportChart {
    var csv: String {
        CSVText.table([rowTitle, "step", colour.label], cells.keys.sorted().flatMap { row in
            cells[row]!.keys.sorted().map { [rowName(row), String($0), MetricsCSV.format(cells[row]![$0]!)] }
        })
    }
}

/// Percentile bands across layers against step ("Tending Towards Stability", Fig. 1): at each step
/// the 10–90 % and 25–75 % ranges of the per-layer values as shaded bands and the median as a line
/// (numpy's linear-interpolation percentiles).
struct BandChart: ReportChart {
    var title: String
    var yTitle: String
    /// step → the values of every layer at that step.
    var values: [Int: [Double]]
    var axisSteps: [Int] = []
    var width = 600.0
    var height = 330.0

    static let levels = [0.10, 0.25, 0.50, 0.75, 0.90]

    static func percentiles(_ values: [Double]) -> [Double] {
        let sorted = values.sorted()
        return levels.map { p in
            let h = Double(sorted.count - 1) * p
            let lower = Int(h.rounded(.down)), upper = min(Int(h.rounded(.down)) + 1, sorted.count - 1)
            return sorted[lower] + (sorted[upper] - sorted[lower]) * (h - Double(lower))
        }
    }

    var bands: [(step: Int, percentiles: [Double], count: Int)] {
        values.keys.sorted().compactMap { step in
            let finite = values[step]!.filter(\.isFinite)
            return finite.isEmpty ? nil : (step, Self.percentiles(finite), finite.count)
        }
    }

    var csv: String {
        CSVText.table(["step", "layers", "p10", "p25", "p50", "p75", "p90"], bands.map { band in
            [String(band.step), String(band.count)] + band.percentiles.map(MetricsCSV.format)
        })
    }

    func render() -> String {
        let (left, top, bottom, right) = (76.0, 34.0, height - 56, width - 130)
        let bands = self.bands
        let xAxis = StepAxis(steps: Array(Set(bands.map(\.step) + axisSteps)).sorted(), left: left, right: right)
        let yAxis = ValueAxis(values: bands.flatMap(\.percentiles), top: top, bottom: bottom, preferLog: false)
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(SVG.escape(title))\">"
        svg += "<text class=\"chart-title\" x=\"\(SVG.number(left))\" y=\"20\">\(SVG.escape(title))</text>"
        svg += yAxis.render(left: left, right: right, title: yTitle)
        svg += xAxis.render(y: bottom, title: "training step (log scale)")
        func polygon(_ low: Int, _ high: Int, _ fill: String) -> String {
            let upper = bands.map { "\(SVG.number(xAxis.x($0.step))),\(SVG.number(yAxis.y($0.percentiles[high])))" }
            let lower = bands.reversed().map { "\(SVG.number(xAxis.x($0.step))),\(SVG.number(yAxis.y($0.percentiles[low])))" }
            return "<polygon fill=\"\(fill)\" stroke=\"none\" points=\"\((upper + lower).joined(separator: " "))\"/>"
        }
        svg += polygon(0, 4, "#c6dbef") + polygon(1, 3, "#6baed6")
        let median = bands.map { "\(SVG.number(xAxis.x($0.step))),\(SVG.number(yAxis.y($0.percentiles[2])))" }.joined(separator: " ")
        svg += "<polyline fill=\"none\" stroke=\"#08306b\" stroke-width=\"2\" points=\"\(median)\"/>"
        for band in bands {
            let text = zip(["p10", "p25", "median", "p75", "p90"], band.percentiles).map { "\($0) \(MetricsCSV.format($1))" }.joined(separator: ", ")
            svg += "<circle cx=\"\(SVG.number(xAxis.x(band.step)))\" cy=\"\(SVG.number(yAxis.y(band.percentiles[2])))\" r=\"3\" fill=\"#08306b\"><title>step \(band.step) (\(band.count) layers): \(SVG.escape(text))</title></circle>"
        }
        let legend: [(String, String)] = [("#c6dbef", "10–90 %"), ("#6baed6", "25–75 %"), ("#08306b", "median")]
        for (index, entry) in legend.enumerated() {
            let y = top + 6 + Double(index) * 18
            svg += "<g class=\"legend\"><rect x=\"\(SVG.number(right + 16))\" y=\"\(SVG.number(y - 6))\" width=\"22\" height=\"12\" fill=\"\(entry.0)\"/>"
            svg += "<text x=\"\(SVG.number(right + 44))\" y=\"\(SVG.number(y + 4))\">\(entry.1)</text></g>"
        }
        svg += "<text x=\"\(SVG.number(right + 16))\" y=\"\(SVG.number(top + 66))\" class=\"axis-title\">across layers</text>"
        return svg + "</svg>"
    }
}

/// Lines of (x, y) points on linear or logarithmic axes: singular-value spectra (log-log) and QQ plots.
struct XYChart: ReportChart {
    struct Line {
        var label: String
        var points: [(x: Double, y: Double)]
        /// nil: coloured along the series order; else a fixed colour, drawn dashed.
        var dashedColour: String? = nil
    }

    var title: String
    var xTitle: String
    var yTitle: String
    var lines: [Line]
    var logX = false
    var logY = false
    var width = 600.0
    var height = 330.0

    var csv: String {
        CSVText.table(["series", xTitle, yTitle], lines.flatMap { line in
            line.points.map { [line.label, MetricsCSV.format($0.x), MetricsCSV.format($0.y)] }
        })
    }

    /// A linear or log10 mapping of [low, high] to pixels, with ticks.
    struct Scale {
        let low: Double, high: Double, from: Double, to: Double, logarithmic: Bool

        init(values: [Double], from: Double, to: Double, logarithmic: Bool) {
            let usable = values.filter { $0.isFinite && (!logarithmic || $0 > 0) }
            self.from = from
            self.to = to
            self.logarithmic = logarithmic
            if logarithmic {
                let minimum = log10(usable.min() ?? 1), maximum = log10(usable.max() ?? 10)
                low = floor(minimum)
                high = max(ceil(maximum), low + 1)
            } else {
                var minimum = usable.min() ?? 0, maximum = usable.max() ?? 1
                if minimum == maximum { minimum -= 0.5; maximum += 0.5 }
                let step = ValueAxis.niceStep(maximum / 5 - minimum / 5)
                low = floor(minimum / step) * step
                high = ceil(maximum / step) * step
            }
        }

        func position(_ value: Double) -> Double {
            let v = logarithmic ? log10(max(value, 1e-300)) : value
            return from + (v - low) / (high - low) * (to - from)
        }

        var ticks: [(Double, String)] {
            if logarithmic {
                let every = max(1, Int(((high - low) / 6).rounded(.up)))
                return stride(from: Int(low), through: Int(high), by: every).map { (pow(10, Double($0)), SVG.tickLabel(pow(10, Double($0)))) }
            }
            let step = ValueAxis.niceStep(high / 5 - low / 5)
            return stride(from: low, through: high + step * 1e-6, by: step).prefix(100).map { ($0, SVG.tickLabel(abs($0) < step * 1e-9 ? 0 : $0)) }
        }
    }

    func render() -> String {
        let legendWidth = lines.count > 1 ? min(max(48 + (lines.map { SVG.approximateWidth($0.label) }.max() ?? 0), 84), 190) : 0
        let (left, top, bottom, right) = (76.0, 34.0, height - 56, width - 22 - legendWidth)
        let xs = Scale(values: lines.flatMap { $0.points.map(\.x) }, from: left, to: right, logarithmic: logX)
        let ys = Scale(values: lines.flatMap { $0.points.map(\.y) }, from: bottom, to: top, logarithmic: logY)
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(SVG.escape(title))\">"
        svg += "<text class=\"chart-title\" x=\"\(SVG.number(left))\" y=\"20\">\(SVG.escape(title))</text><g class=\"axis\">"
        svg += "<line x1=\"\(SVG.number(left))\" y1=\"\(SVG.number(top))\" x2=\"\(SVG.number(left))\" y2=\"\(SVG.number(bottom))\"/>"
        svg += "<line x1=\"\(SVG.number(left))\" y1=\"\(SVG.number(bottom))\" x2=\"\(SVG.number(right))\" y2=\"\(SVG.number(bottom))\"/>"
        for (value, label) in ys.ticks {
            let y = ys.position(value)
            svg += "<line class=\"grid\" x1=\"\(SVG.number(left))\" y1=\"\(SVG.number(y))\" x2=\"\(SVG.number(right))\" y2=\"\(SVG.number(y))\"/>"
            svg += "<text x=\"\(SVG.number(left - 8))\" y=\"\(SVG.number(y + 4))\" text-anchor=\"end\">\(label)</text>"
        }
        for (value, label) in xs.ticks {
            let x = xs.position(value)
            svg += "<line x1=\"\(SVG.number(x))\" y1=\"\(SVG.number(bottom))\" x2=\"\(SVG.number(x))\" y2=\"\(SVG.number(bottom + 6))\"/>"
            svg += "<text x=\"\(SVG.number(x))\" y=\"\(SVG.number(bottom + 19))\" text-anchor=\"middle\">\(label)</text>"
        }
        let yLabel = yTitle + (logY ? " (log scale)" : "")
        svg += "<text class=\"axis-title\" transform=\"translate(\(SVG.number(left - 52)),\(SVG.number((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(SVG.escape(yLabel))</text>"
        svg += "<text class=\"axis-title\" x=\"\(SVG.number((left + right) / 2))\" y=\"\(SVG.number(bottom + 38))\" text-anchor=\"middle\">\(SVG.escape(xTitle + (logX ? " (log scale)" : "")))</text></g>"
        let ordered = lines.filter { $0.dashedColour == nil }.count
        var colourIndex = 0
        for (index, line) in lines.enumerated() {
            let colour: String
            if let fixed = line.dashedColour { colour = fixed } else { colour = SVG.seriesColor(index: colourIndex, count: ordered, ordered: true); colourIndex += 1 }
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) && (!logY || $0.y > 0) }
            let path = points.map { "\(SVG.number(xs.position($0.x))),\(SVG.number(ys.position($0.y)))" }.joined(separator: " ")
            let dash = line.dashedColour == nil ? "" : " stroke-dasharray=\"6 4\""
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"\(line.dashedColour == nil ? 1.8 : 1.4)\"\(dash) points=\"\(path)\"><title>\(SVG.escape(line.label))</title></polyline>"
            if lines.count > 1 {
                let legendY = top + 6 + Double(index) * LineChart.legendSpacing
                svg += "<g class=\"legend\"><line x1=\"\(SVG.number(right + 16))\" y1=\"\(SVG.number(legendY))\" x2=\"\(SVG.number(right + 38))\" y2=\"\(SVG.number(legendY))\" stroke=\"\(colour)\" stroke-width=\"3\"\(dash)/>"
                svg += "<text x=\"\(SVG.number(right + 44))\" y=\"\(SVG.number(legendY + 4))\">\(SVG.escape(line.label))</text></g>"
            }
        }
        return svg + "</svg>"
    }
}

/// A square matrix in [−1, 1] (token-embedding correlations) as a raster image inside an SVG:
/// one pixel per entry (a PNG data URL, drawn without smoothing), diverging blue–white–red colours,
/// with a colour bar. Thousands of entries stay one image instead of thousands of SVG elements.
struct MatrixImage: ReportChart {
    var title: String
    var matrix: CorrelationMatrix
    var size = 300.0
    var dataFile: String?

    var csv: String {
        let n = matrix.count
        var text = "token," + (0..<n).map(String.init).joined(separator: ",") + "\n"
        for i in 0..<n { text += String(i) + "," + (0..<n).map { MetricsCSV.format(matrix.values[i * n + $0]) }.joined(separator: ",") + "\n" }
        return text
    }

    static func colour(_ value: Double) -> (UInt8, UInt8, UInt8) {
        guard value.isFinite else { return (200, 200, 200) }
        let t = min(max(value, -1), 1)
        // White at 0, #b2182b at +1, #2166ac at −1.
        let (r, g, b): (Double, Double, Double) = t >= 0 ? (178, 24, 43) : (33, 102, 172)
        let a = abs(t)
        return (UInt8((255 + (r - 255) * a).rounded()), UInt8((255 + (g - 255) * a).rounded()), UInt8((255 + (b - 255) * a).rounded()))
    }

    func render() -> String {
        let n = matrix.count
        var pixels = [UInt8]()
        pixels.reserveCapacity(n * n * 3)
        for value in matrix.values { let (r, g, b) = Self.colour(value); pixels += [r, g, b] }
        let png = PNG.encode(width: n, height: n, rgb: pixels).base64EncodedString()
        let (left, top) = (44.0, 34.0)
        let width = left + size + 90, height = top + size + 40
        var svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(SVG.escape(title))\">"
        svg += "<text class=\"chart-title\" x=\"\(SVG.number(left))\" y=\"20\">\(SVG.escape(title))</text>"
        svg += "<image x=\"\(SVG.number(left))\" y=\"\(SVG.number(top))\" width=\"\(SVG.number(size))\" height=\"\(SVG.number(size))\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(png)\"/>"
        svg += "<rect x=\"\(SVG.number(left))\" y=\"\(SVG.number(top))\" width=\"\(SVG.number(size))\" height=\"\(SVG.number(size))\" fill=\"none\" stroke=\"#444\" stroke-width=\"0.5\"/>"
        for tick in stride(from: 0, through: n, by: max(1, n / 4)) {
            let offset = Double(tick) / Double(n) * size
            svg += "<text x=\"\(SVG.number(left + offset))\" y=\"\(SVG.number(top + size + 16))\" text-anchor=\"middle\">\(tick)</text>"
            svg += "<text x=\"\(SVG.number(left - 6))\" y=\"\(SVG.number(top + offset + 4))\" text-anchor=\"end\">\(tick)</text>"
        }
        svg += "<text class=\"axis-title\" x=\"\(SVG.number(left + size / 2))\" y=\"\(SVG.number(top + size + 34))\" text-anchor=\"middle\">token id</text>"
        let barX = left + size + 22, id = SVG.identifier("corr", title)
        svg += "<defs><linearGradient id=\"\(id)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for stop in 0...8 {
            let value = -1 + Double(stop) / 4
            let (r, g, b) = Self.colour(value)
            svg += "<stop offset=\"\(SVG.number(Double(stop) / 8))\" stop-color=\"rgb(\(r),\(g),\(b))\"/>"
        }
        svg += "</linearGradient></defs><rect x=\"\(SVG.number(barX))\" y=\"\(SVG.number(top))\" width=\"14\" height=\"\(SVG.number(size))\" fill=\"url(#\(id))\" stroke=\"#444\" stroke-width=\"0.5\"/>"
        for (value, label) in [(1.0, "1"), (0.0, "0"), (-1.0, "−1")] {
            let y = top + (1 - (value + 1) / 2) * size
            svg += "<text x=\"\(SVG.number(barX + 20))\" y=\"\(SVG.number(y + 4))\">\(label)</text>"
        }
        svg += "<text class=\"axis-title\" x=\"\(SVG.number(barX))\" y=\"\(SVG.number(top + size + 34))\">Pearson r</text>"
        return svg + "</svg>"
    }
}

/// A minimal PNG writer (8-bit RGB, one IDAT of stored deflate blocks): the report stays free of
/// compression libraries, and images of a few hundred pixels a side stay small enough.
enum PNG {
    static func encode(width: Int, height: Int, rgb: [UInt8]) -> Data {
        precondition(rgb.count == width * height * 3, "pixel buffer does not match the size")
        var raw = [UInt8]()
        raw.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height {
            raw.append(0)  // filter: none
            raw += rgb[(y * width * 3)..<((y + 1) * width * 3)]
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65535, raw.count - offset)
            let final: UInt8 = offset + length == raw.count ? 1 : 0
            zlib += [final, UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8((~length >> 8) & 0xff)]
            zlib += raw[offset..<(offset + length)]
            offset += length
        } while offset < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        zlib += bigEndian((b << 16) | a)
        var data = Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]
        data += chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", [])
        return data
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private static func chunk(_ type: String, _ body: [UInt8]) -> Data {
        let typed = Array(type.utf8) + body
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in typed { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return Data(bigEndian(UInt32(body.count)) + typed + bigEndian(crc ^ 0xFFFF_FFFF))
    }
}
