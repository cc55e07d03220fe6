//! The self-contained HTML page: inline SVG charts drawn by `plotters` (SVG backend), no script,
//! no external resource. Every figure is on the page twice: in the chart (value labels) and as
//! data attributes (`data-*` on each `<section>`/`<figure>`, JSON of the exact numbers), so a
//! browser test can read them back.

use std::fmt::Write as _;

use plotters::prelude::*;
use serde_json::Value;

const W: u32 = 560;
const H: u32 = 300;
const BLUE_: RGBColor = RGBColor(31, 119, 180);
const ORANGE_: RGBColor = RGBColor(255, 127, 14);
const RED_: RGBColor = RGBColor(214, 39, 40);

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A label safe to put into a chart (error codes come from devices).
fn label(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(24)
        .collect()
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// An x-axis label: `MM-DD HH:MM`, with seconds when the buckets are shorter than a minute.
fn tick(secs: i64, interval: f64) -> String {
    let day: String = utc(secs).chars().skip(5).collect();
    if interval < 60.0 {
        format!("{day}:{:02}", secs.rem_euclid(60))
    } else {
        day
    }
}

fn f(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

/// A byte count for people: `N B` below 1 KiB, else KiB/MiB/GiB/TiB with two decimals.
pub fn bytes_text(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if !bytes.is_finite() {
        return "–".into();
    }
    if bytes.abs() < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut v = bytes / 1024.0;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS.get(unit).copied().unwrap_or("TiB"))
}

/// A table cell with a byte count for people and the exact number in `data-bytes`/`title`.
fn bytes_cell(class: &str, x: Option<f64>) -> String {
    match x {
        Some(b) => format!(
            "<td class=\"{class}\" data-bytes=\"{b}\" title=\"{b} bytes\">{}</td>",
            bytes_text(b)
        ),
        None => format!("<td class=\"{class}\" data-bytes=\"\">–</td>"),
    }
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

type Series = Vec<(f64, f64)>;

fn x_range(points: &[&Series], interval: f64) -> std::ops::Range<f64> {
    let xs = points.iter().flat_map(|s| s.iter().map(|p| p.0));
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi.is_finite() {
        (lo - interval * 0.5)..(hi + interval * 1.5)
    } else {
        0.0..1.0
    }
}

/// A line chart of time series (x = Unix seconds) with a value label on every point.
fn line_chart(
    title: &str,
    y_desc: &str,
    series: &[(&str, RGBColor, Series)],
    y_max: Option<f64>,
    interval: f64,
    digits: usize,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let all: Vec<&Series> = series.iter().map(|s| &s.2).collect();
        let top = y_max.unwrap_or_else(|| {
            all.iter()
                .flat_map(|s| s.iter().map(|p| p.1))
                .fold(1.0, f64::max)
                * 1.2
        });
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(x_range(&all, interval), 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(4)
            .x_label_formatter(&|x| tick(*x as i64, interval))
            .y_desc(y_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, pts) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            chart
                .draw_series(
                    pts.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
                )
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(pts.iter().map(|&(x, y)| {
                    Text::new(
                        format!("{y:.digits$}"),
                        (x, y),
                        ("sans-serif", 11).into_font().color(&color),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A bar chart of failures per error code, with the count on every bar.
fn bar_chart(title: &str, bars: &[(String, u64)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = bars.len().max(1) as u32;
        let top = bars.iter().map(|b| b.1).max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d((0u32..n - 1).into_segmented(), 0u64..top + top / 5 + 1)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = bars.iter().map(|b| label(&b.0)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("failures")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(RED_.filled())
                    .margin(12)
                    .data(bars.iter().enumerate().map(|(i, b)| (i as u32, b.1))),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    b.1.to_string(),
                    (SegmentValue::CenterOf(i as u32), b.1),
                    ("sans-serif", 12),
                )
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn series(v: &Value, key: &str, list: &str) -> Series {
    v.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b.get("time")?.as_f64()?, f(b, key)?)))
        .collect()
}

fn attr_json(v: &Value) -> String {
    esc(&v.to_string())
}

/// The table of bytes over the air per update (and, from the telemetry, the casync chunks
/// among them); `data-*` on the table carry the exact `update_bytes` figures.
fn bytes_table(out: &mut String, s: &Value, full_bytes: Option<u64>) {
    let b = s.get("update_bytes").cloned().unwrap_or(Value::Null);
    // integers as they are, other numbers as Rust prints an f64 (as data-p50-ms)
    let num = |v: &Value, k: &str| match v.get(k) {
        Some(Value::Number(n)) => n.as_u64().map_or_else(
            || n.as_f64().map_or_else(String::new, |x| x.to_string()),
            |u| u.to_string(),
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<table class=\"update-bytes\" data-updates=\"{}\" data-devices=\"{}\" data-p50-bytes=\"{}\" data-p95-bytes=\"{}\" data-total-bytes=\"{}\" data-full-bytes=\"{}\" data-p50-of-full-percent=\"{}\">\n\
         <caption>Bytes over the air per update (the downloaded artifact + the casync chunks RAUC fetched)</caption>\n\
         <tr><th></th><th>updates</th><th>devices</th><th>P50</th><th>P95</th><th>total</th><th>P50 of the full bundle</th></tr>",
        num(&b, "count"),
        num(&b, "devices"),
        num(&b, "p50"),
        num(&b, "p95"),
        num(&b, "total"),
        full_bytes.map_or_else(String::new, |f| f.to_string()),
        num(&b, "p50_of_full_percent"),
    );
    let mut row = |kind: &str, name: &str, v: &Value, pct: Option<f64>| {
        let _ = writeln!(
            out,
            "<tr data-kind=\"{kind}\"><td>{name}</td><td>{}</td><td>{}</td>{}{}{}<td>{}</td></tr>",
            num(v, "count"),
            num(v, "devices"),
            bytes_cell("p50", f(v, "p50")),
            bytes_cell("p95", f(v, "p95")),
            bytes_cell("total", f(v, "total")),
            pct.map_or_else(|| "–".into(), |p| format!("{p:.2} %")),
        );
    };
    row(
        "update",
        "over the air (<code>update_bytes</code>)",
        &b,
        f(&b, "p50_of_full_percent"),
    );
    if let Some(c) = s.get("chunk_bytes").filter(|c| !c.is_null()) {
        row(
            "chunks",
            "of them casync chunks (<code>chunk_bytes</code>)",
            c,
            None,
        );
    }
    out.push_str("</table>\n");
    let full = full_bytes.map_or_else(
        || {
            "Give <code>--full-bytes N</code> (the full bundle's size) for P50 as a share of it"
                .to_owned()
        },
        |f| format!("Full bundle {} ({f} bytes)", bytes_text(f as f64)),
    );
    let _ = writeln!(
        out,
        "<p class=\"update-bytes-note\">Reported by {} of the {} devices with an outcome; devices that did not report <code>update_bytes</code> (older agents) are left out. {full}.</p>",
        num(&b, "devices"),
        num(s, "devices"),
    );
}

/// One source's section (hawkBit or telemetry): headline figures, bytes over the air, three
/// charts, errors table.
fn source_section(
    out: &mut String,
    id: &str,
    title: &str,
    s: &Value,
    interval: i64,
    full_bytes: Option<u64>,
) -> Result<(), String> {
    let dl = s.get("download_ms").cloned().unwrap_or(Value::Null);
    let rate = f(s, "rate");
    let p50 = f(&dl, "p50");
    let p95 = f(&dl, "p95");
    let last = s.get("success_rate_last").cloned().unwrap_or(Value::Null);
    let _ = writeln!(
        out,
        "<section class=\"source\" id=\"{id}\" data-source=\"{id}\" data-success-rate=\"{}\" data-success=\"{}\" data-failure=\"{}\" data-p50-ms=\"{}\" data-p95-ms=\"{}\" data-downloads=\"{}\">\n<h2>{}</h2>",
        rate.map_or_else(String::new, |r| r.to_string()),
        s.get("success").map_or_else(String::new, Value::to_string),
        s.get("failure").map_or_else(String::new, Value::to_string),
        p50.map_or_else(String::new, |r| r.to_string()),
        p95.map_or_else(String::new, |r| r.to_string()),
        dl.get("count").map_or_else(String::new, Value::to_string),
        esc(title)
    );
    let _ = writeln!(
        out,
        "<p class=\"figures\">Success rate <b class=\"rate\">{} %</b> ({} succeeded, {} failed; last outcome per device {} % of {}) · download P50 <b class=\"p50\">{} ms</b>, P95 <b class=\"p95\">{} ms</b> over {} downloads</p>",
        fmt_opt(rate, 1),
        s.get("success").map_or_else(String::new, Value::to_string),
        s.get("failure").map_or_else(String::new, Value::to_string),
        fmt_opt(f(&last, "rate"), 1),
        last.get("devices")
            .map_or_else(String::new, Value::to_string),
        fmt_opt(p50, 0),
        fmt_opt(p95, 0),
        dl.get("count").map_or_else(String::new, Value::to_string),
    );
    bytes_table(out, s, full_bytes);
    let iv = interval as f64;
    let rate_s = series(s, "rate", "success_rate");
    let svg = line_chart(
        "Success rate per interval",
        "%",
        &[("success rate", BLUE_, rate_s)],
        Some(105.0),
        iv,
        1,
    )?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"success-rate\" data-values=\"{}\">{svg}<figcaption>100 × success / (success + failure) per {}-second interval (UTC)</figcaption></figure>",
        attr_json(s.get("success_rate").unwrap_or(&Value::Null)),
        interval
    );
    let svg = line_chart(
        "Download duration P50 / P95",
        "ms",
        &[
            ("P50", BLUE_, series(&dl, "p50", "buckets")),
            ("P95", ORANGE_, series(&dl, "p95", "buckets")),
        ],
        None,
        iv,
        0,
    )?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"download-duration\" data-values=\"{}\">{svg}<figcaption>percentile_cont of the download durations per interval</figcaption></figure>",
        attr_json(dl.get("buckets").unwrap_or(&Value::Null)),
    );
    let errors: Vec<(String, u64, u64)> = s
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("error_code")?.as_str()?.to_owned(),
                e.get("failures")?.as_u64()?,
                e.get("devices")?.as_u64()?,
            ))
        })
        .collect();
    let bars: Vec<(String, u64)> = errors.iter().map(|e| (e.0.clone(), e.1)).collect();
    let svg = bar_chart("Failures by error code", &bars)?;
    let _ = writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"errors\" data-values=\"{}\">{svg}<figcaption>failures by error code (unknown: none was sent)</figcaption></figure>",
        attr_json(s.get("errors").unwrap_or(&Value::Null)),
    );
    out.push_str(
        "<table class=\"errors\"><tr><th>error code</th><th>failures</th><th>devices</th></tr>\n",
    );
    for (code, n, d) in &errors {
        let _ = writeln!(
            out,
            "<tr data-error-code=\"{c}\"><td>{c}</td><td>{n}</td><td>{d}</td></tr>",
            c = esc(code)
        );
    }
    if errors.is_empty() {
        out.push_str("<tr><td colspan=\"3\">no failures</td></tr>\n");
    }
    out.push_str("</table>\n</section>\n");
    Ok(())
}

/// The whole page from the report's JSON document.
pub fn page(doc: &Value) -> Result<String, String> {
    let interval = doc
        .get("interval_secs")
        .and_then(Value::as_i64)
        .unwrap_or(60);
    let ro = doc.get("rollout").filter(|r| !r.is_null());
    let full_bytes = doc.get("full_bytes").and_then(Value::as_u64);
    let title = ro.map_or_else(
        || "eyas fleet report".to_owned(),
        |r| {
            format!(
                "Rollout {} “{}”",
                r.get("id").map_or_else(String::new, Value::to_string),
                r.get("name").and_then(Value::as_str).unwrap_or("")
            )
        },
    );
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\n\
         body{{font-family:sans-serif;margin:1.5em;color:#222}} h1{{font-size:1.4em}} h2{{font-size:1.15em;margin-top:1.5em}}\n\
         figure{{display:inline-block;margin:0.5em;vertical-align:top}} figcaption{{font-size:0.8em;color:#555}}\n\
         table{{border-collapse:collapse;margin:0.5em 0}} td,th{{border:1px solid #bbb;padding:0.2em 0.6em;text-align:right}}\n\
         th{{background:#eee}} td:first-child{{text-align:left}} caption{{text-align:left;padding:0.2em 0}}\n</style></head>\n<body>\n<h1>{t}</h1>\n",
        t = esc(&title)
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\" data-interval-secs=\"{interval}\" data-generated-at=\"{g}\">Generated by eyasctl {v} at {g} UTC; interval {interval} s.</p>",
        g = esc(doc
            .get("generated_at")
            .and_then(Value::as_str)
            .unwrap_or("")),
        v = env!("CARGO_PKG_VERSION"),
    );
    if let Some(r) = ro {
        let _ = writeln!(
            out,
            "<section id=\"rollout\" data-rollout-id=\"{}\" data-status=\"{}\" data-targets=\"{}\"><h2>Deployment groups</h2><p>Status <b>{}</b>, {} targets.</p>",
            r.get("id").map_or_else(String::new, Value::to_string),
            esc(r.get("status").and_then(Value::as_str).unwrap_or("")),
            r.get("targets").map_or_else(String::new, Value::to_string),
            esc(r.get("status").and_then(Value::as_str).unwrap_or("")),
            r.get("targets").map_or_else(String::new, Value::to_string),
        );
        out.push_str("<table class=\"groups\"><tr><th>group</th><th>status</th><th>targets</th><th>succeeded</th><th>failed</th><th>running</th><th>not started / canceled</th><th>success rate</th><th>over the air P50</th><th>over the air total</th><th>updates reported</th></tr>\n");
        for g in r
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let n = |k: &str| g.get(k).map_or_else(String::new, Value::to_string);
            let b = g.get("update_bytes").cloned().unwrap_or(Value::Null);
            let _ = writeln!(
                out,
                "<tr data-group=\"{name}\" data-targets=\"{}\" data-success=\"{}\" data-error=\"{}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}<td class=\"updates\">{}</td></tr>",
                n("targets"),
                n("success"),
                n("error"),
                esc(g.get("status").and_then(Value::as_str).unwrap_or("")),
                n("targets"),
                n("success"),
                n("error"),
                n("running"),
                n("other"),
                f(g, "success_rate").map_or_else(|| "–".into(), |r| format!("{r:.1} %")),
                bytes_cell("p50", f(&b, "p50")),
                bytes_cell("total", f(&b, "total").filter(|_| f(&b, "p50").is_some())),
                b.get("count").map_or_else(String::new, Value::to_string),
                name = esc(g.get("name").and_then(Value::as_str).unwrap_or("")),
            );
        }
        out.push_str("</table></section>\n");
    }
    if let Some(h) = doc.get("hawkbit").filter(|v| !v.is_null()) {
        source_section(
            &mut out,
            "hawkbit",
            "hawkBit: action status history",
            h,
            interval,
            full_bytes,
        )?;
    }
    if let Some(t) = doc.get("telemetry").filter(|v| !v.is_null()) {
        source_section(
            &mut out,
            "telemetry",
            "Telemetry: what the devices published (ThingsBoard keys)",
            t,
            interval,
            full_bytes,
        )?;
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_785_531_600), "2026-07-31 21:00");
        assert_eq!(utc(1_785_542_400), "2026-08-01 00:00");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(label("E<script>1"), "Escript1");
    }

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(bytes_text(0.0), "0 B");
        assert_eq!(bytes_text(1023.0), "1023 B");
        assert_eq!(bytes_text(1024.0), "1.00 KiB");
        assert_eq!(bytes_text(2_097_152.0), "2.00 MiB");
        assert_eq!(bytes_text(1.5 * 1024.0 * 1024.0 * 1024.0), "1.50 GiB");
        assert_eq!(bytes_text(f64::NAN), "–");
        assert_eq!(
            bytes_cell("p50", Some(200.0)),
            "<td class=\"p50\" data-bytes=\"200\" title=\"200 bytes\">200 B</td>"
        );
    }

    #[test]
    fn page_shows_bytes_over_the_air() {
        let doc = serde_json::json!({
            "interval_secs": 60,
            "full_bytes": 2000,
            "rollout": {"id": 1, "name": "r", "status": "finished", "targets": 4, "groups": [
                {"name": "g", "status": "finished", "targets": 4, "success": 4, "error": 0,
                 "running": 0, "other": 0, "success_rate": 100.0,
                 "update_bytes": {"count": 3, "devices": 3, "p50": 200.0, "p95": 920.0,
                                  "total": 1300, "p50_of_full_percent": 10.0}}]},
            "hawkbit": {"devices": 4, "update_bytes": {"count": 3, "devices": 3, "p50": 200.0,
                        "p95": 920.0, "total": 1300, "p50_of_full_percent": 10.0}},
            "telemetry": null,
        });
        let page = page(&doc).unwrap_or_default();
        assert!(page.contains(
            "<table class=\"update-bytes\" data-updates=\"3\" data-devices=\"3\" data-p50-bytes=\"200\" data-p95-bytes=\"920\" data-total-bytes=\"1300\" data-full-bytes=\"2000\" data-p50-of-full-percent=\"10\">"
        ), "{page}");
        assert!(page.contains("<td>10.00 %</td>"), "{page}");
        assert!(page.contains("Reported by 3 of the 4 devices with an outcome"));
        assert!(page.contains("<td class=\"p50\" data-bytes=\"200\" title=\"200 bytes\">200 B</td><td class=\"total\" data-bytes=\"1300\""), "{page}");
        // no charts added: the bytes are a table (the page's charts stay three per source)
        assert_eq!(page.matches("<figure").count(), 3);
    }
}
