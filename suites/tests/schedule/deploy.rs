//! The deployment examples under `deploy/`: the Kubernetes manifests parse and hang together, the
//! systemd units have the keys the scheduler's stop contract needs, and every command line in them is
//! one `pipeline schedule` accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use pipeline::cli::schedule::ScheduleArgs;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join(dir))
        .unwrap_or_else(|e| panic!("deploy/{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// `pipeline schedule ARGS` as the CLI will parse them.
#[derive(Debug, Parser)]
struct Schedule {
    #[command(flatten)]
    args: ScheduleArgs,
}

#[track_caller]
fn schedule_args(argv: &[&str]) -> ScheduleArgs {
    assert_eq!(argv.first(), Some(&"schedule"), "{argv:?}");
    let parsed = Schedule::try_parse_from(std::iter::once("pipeline").chain(argv[1..].iter().copied()))
        .unwrap_or_else(|e| panic!("{argv:?} is not a valid `pipeline schedule` command line: {e}"));
    parsed.args.options().unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    parsed.args
}

/// Every document of every manifest, with the file it came from.
fn manifests() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    for path in files("kubernetes", "yaml") {
        let text = std::fs::read_to_string(&path).expect("readable");
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = <Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            docs.push((name.clone(), value));
        }
    }
    docs
}

fn pod_spec(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        Some("Job" | "Deployment") => &doc["spec"]["template"]["spec"],
        other => panic!("no pod spec in a {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README")
}

#[test]
fn kubernetes_manifests_parse_and_every_reference_resolves() {
    let docs = manifests();
    let named = |kind: &str| -> Vec<&str> {
        docs.iter().filter(|(_, d)| d["kind"] == kind).filter_map(|(_, d)| d["metadata"]["name"].as_str()).collect()
    };
    for (file, doc) in &docs {
        for field in ["apiVersion", "kind"] {
            assert!(doc[field].is_string(), "{file}: {field} missing");
        }
        assert!(doc["metadata"]["name"].is_string(), "{file}: metadata.name missing");
    }
    let (config_maps, secrets) = (named("ConfigMap"), named("Secret"));
    let documented = readme();
    for (file, doc) in docs.iter().filter(|(_, d)| matches!(d["kind"].as_str(), Some("CronJob" | "Job" | "Deployment")))
    {
        let spec = pod_spec(doc);
        assert!(
            spec["terminationGracePeriodSeconds"].as_u64().is_some_and(|s| s >= 3600),
            "{file}: SIGTERM must leave a date time to finish"
        );
        let container = &spec["containers"][0];
        assert_eq!(strings(&container["command"]), vec!["pipeline"], "{file}");
        for source in container["envFrom"].as_array().expect("envFrom") {
            if let Some(name) = source["configMapRef"]["name"].as_str() {
                assert!(config_maps.contains(&name), "{file}: ConfigMap {name} is not defined");
            }
            if let Some(name) = source["secretRef"]["name"].as_str() {
                assert!(secrets.contains(&name), "{file}: Secret {name} is not defined");
            }
        }
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            if let Some(name) = volume["secret"]["secretName"].as_str() {
                assert!(secrets.contains(&name), "{file}: Secret {name} is not defined");
            }
        }
    }
    for (file, doc) in &docs {
        if doc["kind"] == "ConfigMap" {
            for key in doc["data"].as_object().expect("data").keys() {
                assert!(documented.contains(&format!("`{key}`")), "{file}: {key} is not a documented variable");
            }
        }
        if doc["kind"] == "Secret" {
            for (key, value) in doc["stringData"].as_object().expect("stringData") {
                let value = value.as_str().unwrap_or_default();
                assert!(value.contains("CHANGE-ME"), "{file}: {key} must be a placeholder, not a secret");
            }
        }
    }
}

/// `kubernetes-validate --strict` over `paths` for Kubernetes `version`: its exit status and output.
fn validate(version: &str, paths: &[PathBuf]) -> (bool, String) {
    let out = std::process::Command::new(suites::conformance_python())
        .args(["-m", "kubernetes_validate", "--strict", "-k", version])
        .args(paths)
        .output()
        .expect("the venv's python runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn kubernetes_manifests_pass_the_kubernetes_schemas_strictly() {
    let paths = files("kubernetes", "yaml");
    assert!(paths.len() >= 6, "{paths:?}");
    // The oldest minor version GKE still offers and the newest the validator knows.
    for version in ["1.30.0", "1.37.0"] {
        let (passed, output) = validate(version, &paths);
        assert!(passed, "Kubernetes {version}:\n{output}");
        assert_eq!(output.matches(" passed for resource ").count(), manifests().len(), "every document:\n{output}");
    }
    // The validator is strict: a misspelt field and a wrong type are refused, naming them.
    let dir = tempfile::tempdir().expect("temp dir");
    let job = std::fs::read_to_string(deploy_dir().join("kubernetes/workers-job.yaml")).expect("readable");
    for (from, to, said) in [
        ("readOnlyRootFilesystem", "readOnlyRootFileSystem", "'readOnlyRootFileSystem' was unexpected"),
        ("periodSeconds: 30", "periodSeconds: thirty", "'thirty' is not of type 'integer'"),
    ] {
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, job.replacen(from, to, 1)).expect("written");
        let (passed, output) = validate("1.37.0", &[broken]);
        assert!(!passed && output.contains(said), "{to}: {output}");
    }
}

#[test]
fn every_pod_runs_hardened_with_probes_limits_and_bounded_scratch_space() {
    let docs = manifests();
    let account = docs.iter().map(|(_, d)| d).find(|d| d["kind"] == "ServiceAccount").expect("a ServiceAccount");
    let annotation = &account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"];
    assert!(annotation.as_str().is_some_and(|a| a.ends_with(".iam.gserviceaccount.com")), "Workload Identity");
    for (file, doc) in docs.iter().filter(|(_, d)| matches!(d["kind"].as_str(), Some("CronJob" | "Job" | "Deployment")))
    {
        let spec = pod_spec(doc);
        assert_eq!(spec["serviceAccountName"], account["metadata"]["name"], "{file}");
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{file}");
        assert!(spec["securityContext"]["runAsUser"].as_u64().is_some_and(|u| u > 0), "{file}");
        let container = &spec["containers"][0];
        let security = &container["securityContext"];
        assert_eq!(
            (&security["readOnlyRootFilesystem"], &security["allowPrivilegeEscalation"]),
            (&Value::Bool(true), &Value::Bool(false)),
            "{file}"
        );
        assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"], "{file}");
        for (kind, what) in [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")] {
            assert!(container["resources"][kind][what].is_string(), "{file}: resources.{kind}.{what}");
        }
        for volume in spec["volumes"].as_array().expect("volumes") {
            if volume.get("emptyDir").is_some() {
                assert!(
                    volume["emptyDir"]["sizeLimit"].is_string(),
                    "{file}: emptyDir {} has no size limit",
                    volume["name"]
                );
            }
        }
        // The probes ask the endpoints `--metrics-listen` serves, on the port it listens on.
        let args = strings(&container["args"]);
        let listen = args.iter().position(|a| *a == "--metrics-listen").map(|i| args[i + 1]);
        assert_eq!(listen, Some("0.0.0.0:9184"), "{file}: {args:?}");
        assert_eq!(container["ports"][0]["containerPort"], 9184, "{file}");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz", "{file}");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz", "{file}");
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(container[probe]["httpGet"]["port"], container["ports"][0]["name"], "{file}: {probe}");
        }
    }
}

#[test]
fn the_cronjob_runs_one_scheduler_pass_at_nine_utc() {
    let docs = manifests();
    let cronjobs: Vec<&Value> = docs.iter().map(|(_, d)| d).filter(|d| d["kind"] == "CronJob").collect();
    assert_eq!(cronjobs.len(), 1);
    let cronjob = cronjobs[0];
    assert_eq!(cronjob["spec"]["schedule"], "0 9 * * *");
    assert_eq!(cronjob["spec"]["timeZone"], "Etc/UTC");
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let args = schedule_args(&strings(&pod_spec(cronjob)["containers"][0]["args"]));
    assert!(args.once, "a CronJob pod must exit: --once");

    let deployment = docs.iter().map(|(_, d)| d).find(|d| d["kind"] == "Deployment").expect("the service variant");
    assert!(deployment["spec"]["replicas"].as_u64().is_some_and(|n| n >= 2), "a passive standby");
    let args = schedule_args(&strings(&pod_spec(deployment)["containers"][0]["args"]));
    assert!(!args.once, "the service variant runs until stopped");
    assert_eq!(args.cron, "0 9 * * *");
}

#[test]
fn the_workers_job_runs_parallel_workers_until_the_queue_is_empty() {
    let docs = manifests();
    let job = docs.iter().map(|(_, d)| d).find(|d| d["kind"] == "Job").expect("a workers Job");
    assert!(job["spec"]["parallelism"].as_u64().is_some_and(|n| n >= 2), "parallel workers");
    assert!(job["spec"].get("completions").is_none(), "work-queue pattern: completions unset");
    let args = strings(&pod_spec(job)["containers"][0]["args"]);
    assert_eq!(args.first(), Some(&"worker"));
    assert!(!args.contains(&"--follow"), "a Job's pods must exit when the queue is empty");
}

/// `[Section]` → key → values (a key may repeat).
fn unit(path: &Path) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path).expect("readable");
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_owned());
            sections.entry(name.to_owned()).or_default();
            continue;
        }
        let section = current.clone().unwrap_or_else(|| panic!("{}:{}: key outside a section", path.display(), n + 1));
        let (key, value) =
            line.split_once('=').unwrap_or_else(|| panic!("{}:{}: not key=value: {line}", path.display(), n + 1));
        sections.entry(section).or_default().entry(key.trim().to_owned()).or_default().push(value.trim().to_owned());
    }
    sections
}

fn one<'a>(unit: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>, section: &str, key: &str) -> &'a str {
    let values = unit.get(section).and_then(|s| s.get(key)).unwrap_or_else(|| panic!("[{section}] {key} missing"));
    values.last().expect("a value")
}

/// A systemd time span (`2h`, `90min`, `30s`, `3600`) in seconds.
fn seconds(span: &str) -> u64 {
    let digits: String = span.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap_or_else(|_| panic!("not a time span: {span}"));
    match &span[digits.len()..] {
        "" | "s" => n,
        "min" | "m" => n * 60,
        "h" => n * 3600,
        unit => panic!("unexpected unit {unit} in {span}"),
    }
}

/// The `pipeline` arguments of an `ExecStart=`.
fn exec_args(exec: &str) -> Vec<&str> {
    let mut words = exec.split_whitespace();
    let binary = words.next().expect("a command");
    assert!(binary.ends_with("/pipeline"), "{exec}");
    words.collect()
}

#[test]
fn systemd_units_carry_the_keys_the_stop_contract_needs() {
    let dir = deploy_dir().join("systemd");
    let service = unit(&dir.join("market-pipeline-schedule.service"));
    assert_eq!(one(&service, "Service", "Type"), "simple");
    assert_eq!(one(&service, "Service", "Restart"), "on-failure");
    assert_eq!(one(&service, "Service", "KillSignal"), "SIGTERM");
    assert!(one(&service, "Service", "EnvironmentFile").starts_with('/'));
    assert!(seconds(one(&service, "Service", "TimeoutStopSec")) >= 3600, "long enough for a date");
    assert!(!schedule_args(&exec_args(one(&service, "Service", "ExecStart"))).once);
    assert_eq!(one(&service, "Install", "WantedBy"), "multi-user.target");

    let worker = unit(&dir.join("market-pipeline-worker@.service"));
    assert_eq!(exec_args(one(&worker, "Service", "ExecStart")).first(), Some(&"worker"));
    for key in ["Restart", "KillSignal", "EnvironmentFile", "TimeoutStopSec"] {
        assert_eq!(
            one(&worker, "Service", key),
            one(&service, "Service", key),
            "{key}: workers stop like the scheduler"
        );
    }

    let timer = unit(&dir.join("market-pipeline-schedule.timer"));
    assert_eq!(one(&timer, "Timer", "OnCalendar"), "*-*-* 09:00:00 UTC");
    assert_eq!(one(&timer, "Timer", "Persistent"), "true");
    let started = one(&timer, "Timer", "Unit");
    let once = unit(&dir.join(started));
    assert_eq!(one(&once, "Service", "Type"), "oneshot");
    assert!(schedule_args(&exec_args(one(&once, "Service", "ExecStart"))).once);
}

#[test]
fn the_example_environment_sets_only_documented_variables_and_placeholders() {
    let text = std::fs::read_to_string(deploy_dir().join("systemd/pipeline.env.example")).expect("readable");
    let documented = readme();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not KEY=value: {line}"));
        assert!(documented.contains(&format!("`{key}`")), "{key} is not a documented variable");
        if key == "TARDIS_API_KEY" || key == "DATABASE_URL" {
            assert!(value.contains("CHANGE-ME"), "{key} must be a placeholder");
        }
    }
}

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The version the image is tagged with: the `pipeline` crate's.
fn pipeline_version() -> String {
    let manifest = repository_file("pipeline/Cargo.toml");
    let line = manifest.lines().find(|l| l.starts_with("version = ")).expect("pipeline/Cargo.toml has a version");
    line.trim_start_matches("version = ").trim_matches('"').to_owned()
}

/// compose's `${NAME:-default}` as compose resolves it with `NAME` unset.
fn compose_defaults(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|e| start + e).unwrap_or_else(|| panic!("unclosed ${{ in {value}"));
        let (_, default) = rest[start + 2..end].split_once(":-").unwrap_or_else(|| panic!("no default in {value}"));
        out.push_str(default);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_image_the_compose_file_and_the_manifests_agree() {
    use clap::Parser as _;
    // The Dockerfile's user is the manifests' runAsUser, and its runtime stage bakes in no secret.
    let dockerfile = repository_file("Dockerfile");
    let user = dockerfile.lines().filter_map(|l| l.strip_prefix("USER ")).next_back().expect("a USER line");
    assert_eq!(user.trim(), "10001:10001");
    assert!(!dockerfile.lines().any(|l| l.starts_with("ENTRYPOINT")), "two binaries: commands name theirs");
    for (key, _) in dockerfile.lines().filter_map(|l| l.trim().trim_start_matches("ENV ").split_once('=')) {
        for word in ["TOKEN", "SECRET", "PASSWORD", "API_KEY", "CREDENTIALS"] {
            assert!(!key.contains(word), "the image bakes in {key}");
        }
    }
    let image = format!("market-pipeline:{}", pipeline_version());
    for (file, doc) in
        manifests().iter().filter(|(_, d)| matches!(d["kind"].as_str(), Some("CronJob" | "Job" | "Deployment")))
    {
        let spec = pod_spec(doc);
        assert_eq!(
            (&spec["securityContext"]["runAsUser"], &spec["securityContext"]["runAsGroup"]),
            (&10001.into(), &10001.into()),
            "{file}"
        );
        let name = spec["containers"][0]["image"].as_str().expect("an image");
        assert!(
            name.ends_with(&format!("/{image}")),
            "{file}: {name} is not the image the Dockerfile builds ({image})"
        );
    }

    // compose.yaml: the image by default, every command one the binaries accept, documented variables, ports on
    // loopback only, read-only root filesystems.
    let compose: Value = serde_norway::from_str(&repository_file("compose.yaml")).expect("compose.yaml is YAML");
    let services = compose["services"].as_object().expect("services");
    let documented = readme();
    for name in ["mocks", "schedule"] {
        let service = &services[name];
        assert_eq!(compose_defaults(service["image"].as_str().expect("image")), format!("localhost/{image}"), "{name}");
        assert_eq!(service["read_only"], true, "{name}");
        let argv: Vec<String> = strings(&service["command"]).into_iter().map(compose_defaults).collect();
        match argv[0].as_str() {
            "pipeline" => {
                pipeline::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {argv:?}: {e}"));
                assert_eq!(argv[1], "schedule", "{name}");
                assert!(!schedule_args(&argv[1..].iter().map(String::as_str).collect::<Vec<_>>()).once);
            }
            "harness" => {
                harness::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {argv:?}: {e}"));
                assert!(argv.contains(&"--listen=0.0.0.0".to_owned()), "{name}: its neighbours must reach it");
            }
            other => panic!("{name}: runs {other}"),
        }
        for port in strings(&service["ports"]) {
            assert!(port.starts_with("127.0.0.1:"), "{name}: {port} is published beyond loopback");
        }
    }
    let environment = services["schedule"]["environment"].as_object().expect("environment");
    for key in environment.keys() {
        assert!(documented.contains(&format!("`{key}`")), "compose.yaml: {key} is not a documented variable");
    }
    for (key, url) in [("TARDIS_DATASETS_URL", "http://mocks:9001/v1"), ("BIGQUERY_API_URL", "http://mocks:9050")] {
        assert_eq!(environment[key], url, "the schedule service reaches the mocks service");
    }
}
