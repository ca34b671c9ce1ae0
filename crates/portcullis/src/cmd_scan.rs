//! `portcullis scan`. (Owned by the detection work, issue 5.)
//!
//! Two modes:
//! - `portcullis scan PATH...`: files and folders (honouring .gitignore), text, Markdown, CSV,
//!   JSON, logs, PDF and DOCX; a table, `--format json` or `--format sarif`; exit 1 when a
//!   finding reaches `--fail-on`.
//! - `portcullis scan --jsonl`: JSON Lines `{"id": .., "text": ..}` on stdin, one result line per
//!   input line, in order, streaming; a bad line gets `{"id": null, "error": ".."}`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use portcullis_detect::{Category, Detector, DetectorConfig, Finding};
use serde_json::{Value, json};

/// Output format of a file scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

/// Finding severity, for `--fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Severity {
    /// Internal details.
    Low,
    /// Personal data, weak injection signals.
    Medium,
    /// Secrets, injection.
    High,
    /// Confident secrets (keys, tokens, private keys).
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity of a finding.
    pub fn of(f: &Finding) -> Severity {
        match f.category {
            Category::Secret if f.confidence >= 0.8 => Severity::Critical,
            Category::Secret => Severity::High,
            Category::Injection if f.confidence >= 0.7 => Severity::High,
            Category::Injection => Severity::Medium,
            Category::Pii if f.confidence >= 0.5 => Severity::Medium,
            Category::Pii | Category::Internal => Severity::Low,
        }
    }
}

/// Arguments of `portcullis scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Files or folders to scan.
    pub paths: Vec<std::path::PathBuf>,
    /// Read JSON Lines `{"id": .., "text": ..}` on stdin; write one result line per input line.
    #[arg(long, conflicts_with = "paths")]
    pub jsonl: bool,
    /// Output format for a file scan.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit with status 1 when a finding reaches this severity.
    #[arg(long, value_enum)]
    pub fail_on: Option<Severity>,
    /// Only these categories (comma-separated: pii,secret,internal,injection).
    #[arg(long, value_delimiter = ',')]
    pub categories: Vec<String>,
    /// Drop findings under this confidence.
    #[arg(long)]
    pub min_confidence: Option<f32>,
    /// Detector configuration (JSON or YAML: categories, org rules, allow-lists...).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Skip files larger than this many bytes.
    #[arg(long, default_value_t = 20 << 20)]
    pub max_file_size: u64,
    /// Also scan hidden files and folders.
    #[arg(long)]
    pub hidden: bool,
    /// Do not honour .gitignore and .ignore files.
    #[arg(long)]
    pub no_ignore: bool,
    /// No progress bar (it shows only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `portcullis scan`.
pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let detector = build_detector(&args)?;
    if args.jsonl {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        jsonl(&detector, stdin.lock(), stdout.lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.paths.is_empty() {
        anyhow::bail!("nothing to scan: give one or more paths, or --jsonl");
    }
    scan_paths(&detector, &args)
}

fn build_detector(args: &ScanArgs) -> anyhow::Result<Detector> {
    let mut cfg: DetectorConfig = match &args.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "yaml" || ext == "yml" {
                serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            } else {
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
        }
        None => DetectorConfig::default(),
    };
    if !args.categories.is_empty() {
        cfg.categories = args
            .categories
            .iter()
            .map(|c| c.trim().parse::<Category>())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(m) = args.min_confidence {
        cfg.min_confidence = m;
    }
    Detector::new(&cfg).context("building the detector")
}

/// The JSON Lines loop: one output line per input line, in order, flushed as it goes.
pub fn jsonl(det: &Detector, mut input: impl BufRead, mut out: impl Write) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).context("reading stdin")?;
        if n == 0 {
            break;
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let line = match jsonl_line(det, &buf) {
            Ok(v) => v,
            Err(e) => json!({"id": null, "error": e}),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(())
}

fn jsonl_line(det: &Detector, raw: &[u8]) -> Result<Value, String> {
    let s = std::str::from_utf8(raw).map_err(|e| format!("line is not UTF-8: {e}"))?;
    let v: Value = serde_json::from_str(s.trim_end()).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("expected an object {\"id\": .., \"text\": ..}")?;
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let text = obj
        .get("text")
        .and_then(Value::as_str)
        .ok_or("missing string field \"text\"")?;
    let findings = det.scan_text(text);
    let mut cats: Vec<&str> = findings.iter().map(|f| f.category.as_str()).collect();
    cats.sort_unstable();
    cats.dedup();
    let mut kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let list: Vec<Value> = findings
        .iter()
        .map(|f| json!({"kind": f.kind, "category": f.category, "start": f.start, "end": f.end, "confidence": Finding::confidence_f64(f.confidence)}))
        .collect();
    Ok(json!({"id": id, "categories": cats, "kinds": kinds, "findings": list}))
}

struct FileFinding {
    path: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    preview: String,
    severity: Severity,
    f: Finding,
}

fn scan_paths(det: &Detector, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in &args.paths {
        if p.is_file() {
            files.push(p.clone());
            continue;
        }
        if !p.exists() {
            anyhow::bail!("{}: no such file or folder", p.display());
        }
        let walker = ignore::WalkBuilder::new(p)
            .hidden(!args.hidden)
            .git_ignore(!args.no_ignore)
            .git_global(!args.no_ignore)
            .git_exclude(!args.no_ignore)
            .ignore(!args.no_ignore)
            .require_git(false)
            .build();
        for e in walker {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    eprintln!("warning: {err}");
                    continue;
                }
            };
            if e.file_type().is_some_and(|t| t.is_file()) {
                files.push(e.into_path());
            }
        }
    }
    files.sort();
    let bar = if !args.no_progress && std::io::stderr().is_terminal() && files.len() > 1 {
        let b = indicatif::ProgressBar::new(files.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} scanning {pos}/{len} files [{bar:30}] {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let mut all: Vec<FileFinding> = Vec::new();
    let mut scanned = 0usize;
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut bytes = 0u64;
    for path in &files {
        if let Some(b) = &bar {
            b.set_message(path.display().to_string());
            b.inc(1);
        }
        let shown = path.display().to_string();
        let text = match read_text(path, args.max_file_size) {
            Ok(Some(t)) => t,
            Ok(None) => {
                skipped.push((shown, "binary or unsupported".into()));
                continue;
            }
            Err(e) => {
                skipped.push((shown, format!("{e:#}")));
                continue;
            }
        };
        scanned += 1;
        bytes += text.len() as u64;
        let lines = LineIndex::new(&text);
        for f in det.scan_text(&text) {
            let (line, column) = lines.position(&text, f.start);
            let (end_line, end_column) = lines.position(&text, f.end);
            all.push(FileFinding {
                path: shown.clone(),
                line,
                column,
                end_line,
                end_column,
                preview: mask(&text[f.start..f.end], f.category),
                severity: Severity::of(&f),
                f,
            });
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Table => write_table(&mut out, &all, scanned, bytes)?,
        Format::Json => {
            let v = json!({
                "files_scanned": scanned,
                "bytes_scanned": bytes,
                "skipped": skipped.iter().map(|(p, why)| json!({"path": p, "reason": why})).collect::<Vec<_>>(),
                "findings": all.iter().map(|x| json!({
                    "path": x.path, "line": x.line, "column": x.column,
                    "kind": x.f.kind, "category": x.f.category, "severity": x.severity.as_str(),
                    "confidence": Finding::confidence_f64(x.f.confidence), "start": x.f.start, "end": x.f.end, "preview": x.preview,
                })).collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut out, &v)?;
            writeln!(out)?;
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut out, &sarif(&all))?;
            writeln!(out)?;
        }
    }
    for (p, why) in &skipped {
        if args.format == Format::Table {
            eprintln!("skipped {p}: {why}");
        }
    }
    let fail = args
        .fail_on
        .is_some_and(|min| all.iter().any(|x| x.severity >= min));
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads a file as text: UTF-8 text formats directly, PDF and DOCX through extraction. `None`
/// for binary files.
fn read_text(path: &Path, max: u64) -> anyhow::Result<Option<String>> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > max {
        anyhow::bail!("larger than --max-file-size ({} bytes)", meta.len());
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = std::fs::read(path)?;
    match ext.as_str() {
        "pdf" => return pdf_text(&bytes).map(Some),
        "docx" => return docx_text(&bytes).map(Some),
        _ => {}
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Ok(None);
    }
    Ok(Some(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

fn pdf_text(bytes: &[u8]) -> anyhow::Result<String> {
    // the extractor can panic on malformed files: keep that inside this file's scan
    let owned = bytes.to_vec();
    let r = std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&owned));
    match r {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => anyhow::bail!("PDF text extraction failed: {e}"),
        Err(_) => anyhow::bail!("PDF text extraction failed (malformed file)"),
    }
}

fn docx_text(bytes: &[u8]) -> anyhow::Result<String> {
    use std::io::Read;
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("DOCX is not a zip archive")?;
    let mut xml = String::new();
    let mut part = zip
        .by_name("word/document.xml")
        .context("DOCX without word/document.xml")?;
    if part.size() > 256 << 20 {
        anyhow::bail!("DOCX document part too large");
    }
    part.by_ref().take(256 << 20).read_to_string(&mut xml)?;
    Ok(xml_text(&xml))
}

/// Text of WordprocessingML: the content of text runs (`w:t`, and `w:delText` because text
/// deleted under change tracking is still in the file and can still leak), paragraph ends as
/// newlines, tabs and breaks as whitespace, the five XML entities decoded. Whitespace between
/// tags (the line break Word writes after the XML declaration) is not text, so line numbers
/// count paragraphs.
fn xml_text(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len() / 3);
    let mut rest = xml;
    let mut in_text = false;
    while let Some(lt) = rest.find('<') {
        if in_text {
            push_unescaped(&mut out, &rest[..lt]);
        }
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = &rest[lt + 1..lt + gt];
        let self_closing = tag.ends_with('/');
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .find(|s| !s.is_empty())
            .unwrap_or("");
        let closing = tag.starts_with('/');
        match (closing, name) {
            (false, "w:t" | "w:delText") => in_text = !self_closing,
            (true, "w:t" | "w:delText") => in_text = false,
            (true, "w:p") => out.push('\n'),
            (false, "w:br" | "w:cr") => out.push('\n'),
            (false, "w:tab") => out.push('\t'),
            _ => {}
        }
        rest = &rest[lt + gt + 1..];
    }
    out
}

fn push_unescaped(out: &mut String, s: &str) {
    if !s.contains('&') {
        out.push_str(s);
        return;
    }
    out.push_str(
        &s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    );
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(t: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            t.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based line and column (in characters).
    fn position(&self, t: &str, off: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= off);
        let ls = self.starts[line - 1];
        let col = t.get(ls..off).map_or(off - ls, |s| s.chars().count());
        (line, col + 1)
    }
}

/// A preview that does not reveal the value: secrets show a short prefix, the rest is masked.
fn mask(v: &str, cat: Category) -> String {
    let first_line = v.lines().next().unwrap_or("");
    let chars: Vec<char> = first_line.chars().collect();
    match cat {
        Category::Secret | Category::Pii => {
            let keep = if cat == Category::Secret {
                4.min(chars.len() / 4)
            } else {
                2.min(chars.len() / 4)
            };
            let shown: String = chars[..keep].iter().collect();
            format!("{shown}{} ({} chars)", "*".repeat(6), v.chars().count())
        }
        Category::Internal | Category::Injection => {
            let s: String = chars
                .iter()
                .take(60)
                .map(|c| if c.is_control() { ' ' } else { *c })
                .collect();
            if chars.len() > 60 {
                format!("{s}…")
            } else {
                s
            }
        }
    }
}

fn write_table(
    out: &mut impl Write,
    all: &[FileFinding],
    scanned: usize,
    bytes: u64,
) -> anyhow::Result<()> {
    if all.is_empty() {
        writeln!(out, "No findings in {scanned} files ({bytes} bytes).")?;
        return Ok(());
    }
    let loc: Vec<String> = all
        .iter()
        .map(|x| format!("{}:{}:{}", x.path, x.line, x.column))
        .collect();
    let w_loc = loc
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(8, 70);
    let w_kind = all.iter().map(|x| x.f.kind.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:<w_loc$}  {:<8}  {:<w_kind$}  {:>4}  PREVIEW",
        "LOCATION", "SEVERITY", "KIND", "CONF"
    )?;
    for (x, l) in all.iter().zip(&loc) {
        writeln!(
            out,
            "{:<w_loc$}  {:<8}  {:<w_kind$}  {:>4.2}  {}",
            l,
            x.severity.as_str(),
            x.f.kind,
            x.f.confidence,
            x.preview
        )?;
    }
    let mut by_sev = [0usize; 4];
    for x in all {
        by_sev[x.severity as usize] += 1;
    }
    writeln!(
        out,
        "\n{} findings in {scanned} files ({bytes} bytes): {} critical, {} high, {} medium, {} low.",
        all.len(),
        by_sev[3],
        by_sev[2],
        by_sev[1],
        by_sev[0]
    )?;
    Ok(())
}

fn sarif(all: &[FileFinding]) -> Value {
    let mut rules: Vec<&str> = all.iter().map(|x| x.f.kind.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    let rule_objs: Vec<Value> = rules
        .iter()
        .map(|k| json!({"id": k, "name": k, "shortDescription": {"text": format!("Portcullis detector {k}")}}))
        .collect();
    let results: Vec<Value> = all
        .iter()
        .map(|x| {
            let level = match x.severity {
                Severity::Critical | Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low => "note",
            };
            json!({
                "ruleId": x.f.kind,
                "ruleIndex": rules.binary_search(&x.f.kind.as_str()).unwrap_or(0),
                "level": level,
                "message": {"text": format!("{} ({}, confidence {:.2}): {}", x.f.kind, x.f.category, x.f.confidence, x.preview)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": x.path.replace('\\', "/")},
                    "region": {"startLine": x.line, "startColumn": x.column, "endLine": x.end_line, "endColumn": x.end_column}
                }}],
                "properties": {"category": x.f.category, "severity": x.severity.as_str(), "confidence": Finding::confidence_f64(x.f.confidence)},
            })
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {"name": "portcullis", "version": env!("CARGO_PKG_VERSION"), "rules": rule_objs}},
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_in_order_with_errors() {
        let det = Detector::new(&DetectorConfig::default()).unwrap();
        let input = b"{\"id\":\"a\",\"text\":\"mail bob@example.com\"}\nnot json\n\n{\"id\":7,\"text\":\"nothing here\"}\n{\"id\":\"x\"}\n";
        let mut out = Vec::new();
        jsonl(&det, &input[..], &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["id"], "a");
        assert_eq!(lines[0]["kinds"][0], "pii.email");
        assert_eq!(lines[0]["categories"][0], "pii");
        assert_eq!(lines[0]["findings"][0]["start"], 5);
        assert!(lines[1]["id"].is_null() && lines[1]["error"].is_string());
        assert_eq!(lines[2]["id"], 7);
        assert_eq!(lines[2]["findings"].as_array().unwrap().len(), 0);
        assert!(lines[3]["error"].is_string());
    }

    #[test]
    fn docx_xml_text() {
        let x = "<w:document><w:body><w:p><w:r><w:t>Hello &amp; bye</w:t></w:r></w:p><w:p><w:r><w:tab/><w:t>x</w:t></w:r></w:p></w:body></w:document>";
        assert_eq!(xml_text(x), "Hello & bye\n\tx\n");
        // whitespace between tags is not text; deleted text is; `w:tbl` is not `w:t`
        let y = "<?xml version=\"1.0\"?>\r\n<w:document>\n  <w:body><w:tbl><w:tr><w:tc><w:p><w:r>\
                 <w:t xml:space=\"preserve\">a </w:t><w:delText>b</w:delText><w:t/></w:r></w:p>\
                 </w:tc></w:tr></w:tbl></w:body></w:document>";
        assert_eq!(xml_text(y), "a b\n");
    }

    #[test]
    fn masks_values() {
        assert_eq!(
            mask("ghp_abcdefghijklmnopqrstuvwxyz0123456789", Category::Secret),
            "ghp_****** (40 chars)"
        );
        assert!(!mask("bob@example.com", Category::Pii).contains("example"));
    }

    #[test]
    fn line_index() {
        let t = "ab\ncdé\nx";
        let li = LineIndex::new(t);
        assert_eq!(li.position(t, 0), (1, 1));
        assert_eq!(li.position(t, 4), (2, 2));
        assert_eq!(li.position(t, t.len() - 1), (3, 1));
    }
}
