//! `token::parse` against the obvious way (serde_json into a String, then uuid), on the same
//! bodies, so that criterion's report shows the two side by side.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// What IIS sends with a 403 when nothing custom is configured (about 1 KB).
const HTML_403: &str = r#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>403 - Forbidden: Access is denied.</title>
<style type="text/css">
<!--
body{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, sans-serif;background:#EEEEEE;}
fieldset{padding:0 15px 10px 15px;}
h1{font-size:2.4em;margin:0;color:#FFF;}
h2{font-size:1.7em;margin:0;color:#CC0000;}
h3{font-size:1.2em;margin:10px 0 0 0;color:#000000;}
#header{width:96%;margin:0 0 0 0;padding:6px 2% 6px 2%;font-family:"trebuchet MS", Verdana, sans-serif;color:#FFF;
background-color:#555555;}
#content{margin:0 0 0 2%;position:relative;}
.content-container{background:#FFF;width:96%;margin-top:8px;padding:10px;position:relative;}
-->
</style>
</head>
<body>
<div id="header"><h1>Server Error</h1></div>
<div id="content">
 <div class="content-container"><fieldset>
  <h2>403 - Forbidden: Access is denied.</h2>
  <h3>You do not have permission to view this directory or page using the credentials that you supplied.</h3>
 </fieldset></div>
</div>
</body>
</html>
"#;

/// The obvious way, made to do the same job: serde_json knows nothing of a BOM, and without
/// stripping it the baseline would only measure its own failure on `upper_braced_bom`.
/// Its error is an enum rather than a `Box<dyn Error>`, to charge it no allocation of ours.
fn baseline(body: &[u8]) -> Result<uuid::Uuid, BaselineError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let s: String = serde_json::from_slice(body).map_err(BaselineError::Json)?;
    uuid::Uuid::parse_str(&s).map_err(BaselineError::Uuid)
}

#[derive(Debug)]
#[allow(dead_code)] // read only through Debug, when a check fails
enum BaselineError {
    Json(serde_json::Error),
    Uuid(uuid::Error),
}

fn token_parse(c: &mut Criterion) {
    let inputs: [(&str, &[u8]); 4] = [
        ("quoted", b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\""),
        (
            "upper_braced_bom",
            b"\xEF\xBB\xBF\"{6F1C0C3E-0D1B-4A53-9A43-1F1F0B8B5B2C}\"",
        ),
        ("html_403", HTML_403.as_bytes()),
        (
            "object",
            b"{\"token\":\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"}",
        ),
    ];
    // Both functions must give the same verdict, or the comparison means nothing.
    for (name, body) in inputs {
        assert_eq!(
            sdload::token::parse(body).is_ok(),
            baseline(body).is_ok(),
            "{name}"
        );
    }
    let mut group = c.benchmark_group("token_parse");
    for (name, body) in inputs {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("sdload", name), body, |b, body| {
            b.iter(|| sdload::token::parse(black_box(body)))
        });
        group.bench_with_input(BenchmarkId::new("baseline", name), body, |b, body| {
            b.iter(|| baseline(black_box(body)))
        });
    }
    group.finish();
}

criterion_group!(benches, token_parse);
criterion_main!(benches);
