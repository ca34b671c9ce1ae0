//! `portcullis scan` on PDF and DOCX files (issue 5: document intake, DLP-1). The documents are
//! written here at test time: a one-page PDF with two text lines in a standard font, written
//! by hand with a correct cross-reference table, and a DOCX (a zip with `[Content_Types].xml`,
//! the package relationships and `word/document.xml`) written with the `zip` crate the binary
//! itself uses for extraction.

use std::io::Write;
use std::process::Command;

/// An AWS access key id in the documented format (not the documentation's `EXAMPLE` key,
/// which the detector skips on purpose), and an e-mail address.
const AWS_KEY: &str = "AKIAZ3MQXWEKDDFN7BQR";
const EMAIL: &str = "jane.doe@example.com";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
}

/// A minimal valid PDF 1.4: catalog, page tree, one page whose content stream shows `lines`
/// in Helvetica (one of the 14 standard fonts, so no font program is embedded), and an xref
/// table whose offsets are computed from the bytes written.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for l in lines {
        // PDF literal strings: escape the three special characters
        let esc = l
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({esc}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A minimal DOCX: each of `paras` is a paragraph; the second run of the first paragraph is
/// split so that extraction must join runs, and XML entities must be decoded.
fn docx(paras: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    for p in paras {
        let esc = p
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let (a, b) = esc.split_at(esc.len() / 2);
        body.push_str(&format!(
            "<w:p><w:r><w:t xml:space=\"preserve\">{a}</w:t></w:r><w:r><w:t>{b}</w:t></w:r></w:p>"
        ));
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}<w:sectPr/></w:body></w:document>"
    );
    let content_types = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
        <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
        <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
        <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
        <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
        </Types>";
    let rels = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
        <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
        <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
        </Relationships>";
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opt = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", rels),
        ("word/document.xml", document.as_str()),
    ] {
        zw.start_file(name, opt).unwrap();
        zw.write_all(data.as_bytes()).unwrap();
    }
    zw.finish().unwrap().into_inner()
}

/// Runs `portcullis scan --format json` on `path`; returns the parsed report.
fn scan_json(path: &std::path::Path) -> serde_json::Value {
    let out = bin()
        .args(["scan", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kinds(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pdf_text_is_extracted_and_scanned() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("report.pdf");
    std::fs::write(
        &p,
        pdf(&[
            &format!("Contact {EMAIL} about the launch."),
            &format!("Deploy key: {AWS_KEY}"),
        ]),
    )
    .unwrap();
    let v = scan_json(&p);
    assert_eq!(v["files_scanned"], 1, "{v}");
    let k = kinds(&v);
    assert!(k.iter().any(|x| x == "pii.email"), "{k:?} in {v}");
    assert!(
        k.iter().any(|x| x == "secret.aws_access_key"),
        "{k:?} in {v}"
    );
    // the key's value is never echoed in the report
    assert!(!v.to_string().contains(AWS_KEY), "{v}");
}

#[test]
fn docx_text_is_extracted_and_scanned() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("memo.docx");
    std::fs::write(
        &p,
        docx(&[
            &format!("Contact {EMAIL} about Q&A <draft>."),
            &format!("Deploy key: {AWS_KEY}"),
        ]),
    )
    .unwrap();
    let v = scan_json(&p);
    assert_eq!(v["files_scanned"], 1, "{v}");
    let k = kinds(&v);
    assert!(k.iter().any(|x| x == "pii.email"), "{k:?} in {v}");
    assert!(
        k.iter().any(|x| x == "secret.aws_access_key"),
        "{k:?} in {v}"
    );
    // findings point at the second paragraph's line for the key
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "secret.aws_access_key")
        .unwrap();
    assert_eq!(f["line"], 2, "{f}");
}

#[test]
fn clean_documents_have_no_findings_and_broken_ones_fail_clearly() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("clean.pdf"),
        pdf(&["Quarterly figures are attached."]),
    )
    .unwrap();
    std::fs::write(
        d.path().join("clean.docx"),
        docx(&["Quarterly figures are attached."]),
    )
    .unwrap();
    let v = scan_json(d.path());
    assert_eq!(v["files_scanned"], 2, "{v}");
    assert!(kinds(&v).is_empty(), "{v}");

    // a file named .docx that is not a zip: reported as an error for that file, not a crash
    let bad = d.path().join("broken.docx");
    std::fs::write(&bad, b"not a zip archive").unwrap();
    let out = bin()
        .args(["scan", "--format", "json"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("DOCX is not a zip archive") || stdout.contains("DOCX is not a zip archive"),
        "status {:?}, stderr {err}, stdout {stdout}",
        out.status
    );
}
