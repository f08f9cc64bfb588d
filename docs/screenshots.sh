#!/usr/bin/env bash
# Renders a pythia-mini sweep's report in headless Chromium and screenshots each analysis section
# into docs/report-*.png (issue 13). Outside `make test`: it runs a full sweep (a few minutes on two
# cores) and needs Chromium (Debian `chromium`, installed here when missing).
#
#   docs/screenshots.sh              # from the repository root; SHARED=../shared by default
#
# It also smoke-tests the page: Chromium must load it and its DOM must hold every new section.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
WORK=$(realpath "${WORK:-$(mktemp -d /tmp/neoxprobe-screens.XXXXXX)}")
BIN=.build/release/neoxprobe
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

if ! command -v chromium >/dev/null || ! command -v pngquant >/dev/null; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium pngquant
fi
[ -x "$BIN" ] || make build
if [ ! -f "$WORK/sweep/metrics.csv" ] || ! grep -q '"status" *: *"complete"' "$WORK/sweep/run.json"; then
  "$BIN" sweep --suite "$SHARED/models/pythia-mini" --data "$SHARED/data/minipile/document" --batch-of-step 1999 --batch-size 4 \
    --probes outliers,cka,weights,perplexity,lambada,activation_histograms,embeddings,spectra,svd_directions,weight_shape \
    --lambada-data "$SHARED/data/lambada/lambada_test.jsonl" --lambada-limit 200 --out "$WORK/sweep" --quiet
fi
"$BIN" report "$WORK/sweep"

# A copy marked unfinished, for the partial-sweep banner.
rm -rf "$WORK/partial" && cp -r "$WORK/sweep" "$WORK/partial"
sed -i 's/"status" *: *"complete"/"status" : "running"/' "$WORK/partial/run.json"
"$BIN" report "$WORK/partial"

# Smoke test: the page loads and its DOM holds every new section and a download link per chart.
dom=$(chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=5000 --dump-dom "file://$WORK/sweep/report.html" 2>/dev/null)
for id in percentile-bands weight-movement activation-distributions embedding-structure singular-value-spectra svd-direction-strings weight-distribution-shape; do
  grep -q "<section id=\"$id" <<<"$dom" || { echo "smoke test: section '$id' missing from the rendered page" >&2; exit 1; }
done
charts=$(grep -o '<svg class="chart"' <<<"$dom" | wc -l); links=$(grep -o 'download="[^"]*\.svg"' <<<"$dom" | wc -l)
[ "$charts" -gt 40 ] && [ "$links" -ge "$charts" ] || { echo "smoke test: $charts charts, $links SVG download links" >&2; exit 1; }
echo "smoke test: $charts charts rendered, each with SVG and CSV downloads"

# One small page per section (the report's own CSS), screenshotted at its own height.
python3 - "$WORK" <<'PY'
import pathlib, re, sys
work = pathlib.Path(sys.argv[1])
page = (work / "sweep" / "report.html").read_text()
style = re.search(r"<style>.*?</style>", page, re.S).group(0)
sections = {m.group(2): m.group(1) for m in re.finditer(r'(<section id="([^"]+)".*?</section>)', page, re.S)}
wanted = {
    "outliers": "activation-outliers", "bands": "percentile-bands", "movement": "weight-movement",
    "activation-histograms": "activation-distributions", "embeddings": "embedding-structure",
    "spectra": "singular-value-spectra", "svd-directions": "svd-direction-strings", "weight-shape": "weight-distribution-shape",
}
out = work / "pages"
out.mkdir(exist_ok=True)
for name, prefix in wanted.items():
    key = next(k for k in sections if k.startswith(prefix))
    body = sections[key]
    if name == "svd-directions":  # the final checkpoint's table only, cut to its first rows
        body = re.sub(r"<details>.*?</details>", "", body, flags=re.S)
        body = re.sub(r"((?:<tr>.*?</tr>){13}).*?</table>", r"\1</table>", body, flags=re.S)
    (out / f"{name}.html").write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{style}</head><body>{body}</body></html>")
partial = (work / "partial" / "report.html").read_text()
banner = re.search(r'<div class="warning" role="alert"><strong>⚠ Partial.*?</div>', partial, re.S).group(0)
(out / "partial-banner.html").write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{style}</head><body>{banner}</body></html>")
PY
declare -A height=([outliers]=1500 [bands]=780 [movement]=1160 [activation-histograms]=1500 [embeddings]=1160 [spectra]=1160 [svd-directions]=720 [weight-shape]=1160 [partial-banner]=110)
for page in "${!height[@]}"; do
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=3000 --window-size=1300,${height[$page]} \
    --screenshot="$WORK/pages/$page.png" "file://$WORK/pages/$page.html" 2>/dev/null
  # A 256-colour palette keeps each PNG small.
  pngquant --quality=60-95 --speed 1 --force --output "docs/report-$page.png" "$WORK/pages/$page.png"
done
ls -la docs/report-*.png
