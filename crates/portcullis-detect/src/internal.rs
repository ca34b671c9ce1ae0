//! Internal-detail leaks (DLP-2): filesystem paths, stack traces, shell commands, internal host
//! names, SQL errors, classification labels. Private addresses come from the IP validator
//! (`pii.rs`).

use crate::Category;
use crate::rules::{Check, Spec, spec};

macro_rules! i {
    ($kind:literal, [$($t:literal),+], $re:literal) => {
        spec(concat!("internal.", $kind), Category::Internal, &[$($t),+], $re)
    };
    ($kind:literal, [$($t:literal),+], $re:literal, $($f:ident : $v:expr),+) => {
        Spec { $($f: $v),+, ..spec(concat!("internal.", $kind), Category::Internal, &[$($t),+], $re) }
    };
}

pub(crate) static SPECS: &[Spec] = &[
    // --- stack traces ---
    i!("stack_trace", ["Traceback (most recent call last):"],
        r"Traceback \(most recent call last\):(?:\r?\n[ \t]+[^\n]*)+(?:\r?\n[A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Exit|Interrupt|Warning)[^\n]*)?",
        max_len: 65536, conf: 0.95, left_bound: false),
    i!("stack_trace", ["File \""], r#"File "[^"\n]+", line \d+, in [^\s]+"#, conf: 0.8),
    i!("stack_trace", ["Exception in thread \""], r#"Exception in thread "[^"\n]*" [A-Za-z0-9_.$]+[^\n]*"#, conf: 0.95),
    i!("stack_trace", ["\tat "],
        r"\tat [A-Za-z_$<][A-Za-z0-9_$.<>\[\]`]*(?:\.[A-Za-z0-9_$<>]+)*\s?\((?:[^)\n]*)\)(?:\r?\n[ \t]+at [^\n]+)+",
        max_len: 65536, conf: 0.9, left_bound: false),
    // frames indented with spaces (JavaScript, .NET, Java): found from the file-and-line part
    i!("stack_trace", [".java:", ".js:", ".ts:", ".mjs:", ".cjs:", ".kt:", ".scala:", ".cs:line"],
        r"\n[ \t]+at [^\n]*\.(?:java|js|ts|mjs|cjs|kt|scala|cs):(?:line )?\d+[^\n]*(?:\r?\n[ \t]+at [^\n]+)+",
        back: 300, max_len: 8192, conf: 0.9, left_bound: false),
    i!("stack_trace", ["goroutine "], r"goroutine \d+ \[[a-zA-Z ]{3,40}\]:(?:\r?\n[^\n]+)*", max_len: 65536, conf: 0.95),
    i!("stack_trace", ["panicked at "], r"thread '[^'\n]*' panicked at [^\n]+", back: 110, max_len: 400, left_bound: false, conf: 0.95),
    i!("stack_trace", ["Stack trace:"], r"Stack trace:\s*\r?\n#0 [^\n]+(?:\r?\n#\d+ [^\n]+)*", max_len: 65536, conf: 0.9),
    i!("stack_trace", [".rb:"], r"[A-Za-z0-9_./-]+\.rb:\d+:in [`'][^'\n]+'", back: 200, max_len: 300, left_bound: false, conf: 0.85),
    i!("stack_trace", ["Fatal error: ", "PHP Fatal error"], r"(?:PHP )?Fatal error: [^\n]+ in [^\n]+ on line \d+", conf: 0.9),
    // --- SQL and database errors ---
    i!("sql_error", ["SQLSTATE["], r"SQLSTATE\[[0-9A-Z]{5}\][^\n]*", conf: 0.9),
    i!("sql_error", ["ORA-"], r"ORA-\d{5}: [^\n]+", conf: 0.9),
    i!("sql_error", ["You have an error in your SQL syntax"], r"You have an error in your SQL syntax[^\n]*", conf: 0.95),
    i!("sql_error", ["syntax error at or near"], r#"syntax error at or near "[^"\n]*"[^\n]*"#, conf: 0.9),
    i!("sql_error", ["duplicate key value violates unique constraint"], r#"duplicate key value violates unique constraint "[^"\n]*""#, conf: 0.9),
    i!("sql_error", ["psycopg2.", "sqlite3.OperationalError", "sqlalchemy.exc.", "java.sql.SQLException", "SqlException", "PG::"],
        r"(?:psycopg2\.[A-Za-z.]+|sqlite3\.OperationalError|sqlalchemy\.exc\.[A-Za-z]+|java\.sql\.SQLException|SqlException|PG::[A-Za-z]+)[^\n]*", conf: 0.85),
    i!("sql_error", ["Unclosed quotation mark after the character string"], r"Unclosed quotation mark after the character string[^\n]*", conf: 0.95),
    i!("sql_error", ["ERROR 1064", "ERROR 1045", "ERROR 2002"], r"ERROR \d{4} \([0-9A-Z]{5}\)[^\n]*", conf: 0.9),
    i!("sql_error", ["relation \""], r#"relation "[A-Za-z0-9_."]+" does not exist"#, conf: 0.85),
    // --- filesystem paths ---
    i!("file_path", ["/home/", "/Users/", "/root/", "/etc/", "/var/", "/opt/", "/usr/", "/srv/", "/mnt/", "/private/", "/proc/", "/tmp/", "/app/"],
        r"/(?:home|Users|root|etc|var|opt|usr|srv|mnt|private|proc|tmp|app)/[A-Za-z0-9._@%+~-]+(?:/[A-Za-z0-9._@%+~-]*)*",
        check: Check::Path, conf: 0.7),
    i!("file_path", [":\\", ":\\\\"],
        r"(?-u:\b)[A-Za-z]:\\{1,2}(?:Users|Windows|Program Files(?: \(x86\))?|ProgramData|inetpub|Temp|home|src|Projects|dev|build|app|data)\\{1,2}[^\s<>:|?*\x22]+",
        back: 1, left_bound: false, conf: 0.75),
    i!("file_path", ["\\\\"], r"\\\\[A-Za-z0-9._-]{2,63}\\[A-Za-z0-9$._-]{1,80}(?:\\[^\s\\<>:|?*\x22]{1,80}){0,20}", conf: 0.6),
    // --- internal host names ---
    i!("hostname", [".internal", ".corp", ".local", ".lan", ".intranet", ".intra", ".localdomain", ".home.arpa", ".svc.cluster.local"],
        r"(?-u:\b)([A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}(?:internal|corp|local|lan|intranet|intra|localdomain|home\.arpa))(?-u:\b)(?:[^.A-Za-z0-9-]|$)",
        back: 120, max_len: 80, left_bound: false, conf: 0.75),
    // --- shell commands ---
    i!("shell_command", ["sudo ", "rm -rf ", "chmod ", "chown ", "bash -c ", "sh -c ", "/bin/sh", "/bin/bash", "kubectl ", "ssh -i ", "scp ", "nc -e ", "powershell -", "powershell.exe", "Invoke-Expression", "iex(", "curl -", "wget http", "| sh", "| bash", "|sh", "|bash", "$ "],
        r"(?:sudo |rm -rf |chmod |chown |bash -c |sh -c |/bin/sh|/bin/bash|kubectl |ssh -i |scp |nc -e |powershell[ .-]|Invoke-Expression|iex\(|curl -|wget http|\| ?sh\b|\| ?bash\b|\$ [a-z])[^\n]*",
        conf: 0.6, left_bound: false),
    // --- classification labels ---
    i!("classification_label",
        ["CONFIDENTIAL", "Confidential", "INTERNAL USE ONLY", "Internal Use Only", "Internal use only", "DO NOT DISTRIBUTE", "Do Not Distribute", "PROPRIETARY", "TOP SECRET", "STRICTLY CONFIDENTIAL", "Strictly Confidential", "NOT FOR DISTRIBUTION", "FOR INTERNAL USE"],
        r"(?:STRICTLY CONFIDENTIAL|Strictly Confidential|CONFIDENTIAL|Confidential(?: -| –|:|\n| Information| and Proprietary| document)|INTERNAL USE ONLY|Internal [Uu]se [Oo]nly|DO NOT DISTRIBUTE|Do Not Distribute|PROPRIETARY|TOP SECRET|NOT FOR DISTRIBUTION|FOR INTERNAL USE(?: ONLY)?)",
        conf: 0.7),
];

#[cfg(test)]
mod tests {
    use crate::{Category, Detector, DetectorConfig};

    fn kinds(t: &str) -> Vec<String> {
        let d = Detector::new(&DetectorConfig {
            categories: vec![Category::Internal],
            ..Default::default()
        })
        .unwrap();
        d.scan_text(t).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn positives() {
        let cases = [
            (
                "Traceback (most recent call last):\n  File \"/srv/app/main.py\", line 3, in <module>\n    x()\nValueError: bad",
                "internal.stack_trace",
            ),
            (
                "Exception in thread \"main\" java.lang.NullPointerException\n\tat com.acme.Foo.bar(Foo.java:12)\n\tat com.acme.Main.main(Main.java:3)",
                "internal.stack_trace",
            ),
            (
                "thread 'main' panicked at src/main.rs:2:5:\nboom",
                "internal.stack_trace",
            ),
            (
                "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:8 +0x18",
                "internal.stack_trace",
            ),
            (
                "SQLSTATE[42S02]: Base table or view not found: 1146 Table 'shop.users' doesn't exist",
                "internal.sql_error",
            ),
            (
                "ORA-00942: table or view does not exist",
                "internal.sql_error",
            ),
            ("config at /home/alice/project/.env", "internal.file_path"),
            ("C:\\Users\\bob\\AppData\\secrets.txt", "internal.file_path"),
            ("connect to db01.prod.internal now", "internal.hostname"),
            ("run sudo systemctl restart nginx", "internal.shell_command"),
            (
                "CONFIDENTIAL - do not share",
                "internal.classification_label",
            ),
            ("server at 10.0.3.4 port 22", "internal.private_address"),
        ];
        for (t, k) in cases {
            let got = kinds(t);
            assert!(got.iter().any(|x| x == k), "{t:?} gave {got:?}, wanted {k}");
        }
    }

    #[test]
    fn negatives() {
        for t in [
            "see https://example.com/home/index.html",
            "The weather at home is fine.",
            "We use the local library and the corporate office.",
            "public server 8.8.8.8",
            "the file is confidential to you",
        ] {
            let got = kinds(t);
            assert!(got.is_empty(), "{t:?} gave {got:?}");
        }
    }
}
