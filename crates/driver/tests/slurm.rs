//! `examples/slurm/` run for real on a one-node SLURM cluster that this test makes and tears down:
//! `munged` with a fresh key, `slurmctld` and `slurmd` from a minimal `slurm.conf` in a temporary
//! folder (their own ports, no cgroups, no accounting). The features job array and the dependent
//! clustering job must give features byte-identical to one `features` process and a report; a
//! resubmitted array must skip every finished shard; a shard cancelled mid-write must leave no part
//! that `merge` would take.
//!
//! Where Debian's `slurm-wlm` and `munge` are not installed (`.ci/run` installs them), the test says
//! so loudly and runs the same scripts as plain processes, with the array variables SLURM would
//! set, so that the shard contract is still checked.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/slurm")
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        || Path::new("/usr/sbin").join(program).exists()
}

fn sbin(program: &str) -> PathBuf {
    let p = Path::new("/usr/sbin").join(program);
    if p.exists() {
        p
    } else {
        PathBuf::from(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running one-node cluster; dropping it stops the daemons.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<Child>,
}

impl Cluster {
    fn start(dir: &Path) -> Result<Self, String> {
        for sub in ["state", "spool", "log", "munge", "run"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let munge = dir.join("munge");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o700)).unwrap();
        let key = munge.join("munge.key");
        output(
            Command::new(sbin("mungekey"))
                .arg("-c")
                .arg("-k")
                .arg(&key)
                .arg("-f"),
        );
        let socket = munge.join("munge.socket");
        let mut daemons = Vec::new();
        daemons.push(
            Command::new(sbin("munged"))
                .arg("--foreground")
                .arg("--force")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", munge.join("munged.pid").display()))
                .arg(format!("--log-file={}", munge.join("munged.log").display()))
                .arg(format!("--seed-file={}", munge.join("seed").display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("munged: {e}"))?,
        );
        wait_for(|| socket.exists(), "munged's socket")?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
            .to_owned();
        let user = output(Command::new("id").arg("-un")).trim().to_owned();
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=sdsstest\nSlurmctldHost={host}\nSlurmUser={user}\nSlurmdUser={user}\n\
                 SlurmctldPort={}\nSlurmdPort={}\nAuthType=auth/munge\nCredType=cred/munge\n\
                 AuthInfo=socket={}\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/run/slurmctld.pid\nSlurmdPidFile={d}/run/slurmd.pid\n\
                 SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
                 SchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
                 ReturnToService=2\nMpiDefault=none\nMailProg=/bin/true\n\
                 SlurmdParameters=config_overrides\n\
                 NodeName={host} CPUs=16 RealMemory=32000 State=UNKNOWN\n\
                 PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
                free_port(),
                free_port(),
                socket.display()
            ),
        )
        .unwrap();
        for (daemon, extra) in [("slurmctld", &["-D", "-c"][..]), ("slurmd", &["-D"][..])] {
            daemons.push(
                Command::new(sbin(daemon))
                    .args(extra)
                    .env("SLURM_CONF", &conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("{daemon}: {e}"))?,
            );
        }
        // The node claims the CPUs and memory examples/slurm asks for (config_overrides lets
        // slurmd accept more than the machine has): the jobs here are tiny.
        let cluster = Cluster {
            dir: dir.to_owned(),
            conf,
            daemons,
        };
        wait_for(
            || {
                cluster
                    .cmd("sinfo")
                    .args(["-h", "-o", "%T"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
            },
            "the node to be idle",
        )
        .map_err(|e| format!("{e}; slurmd log:\n{}", cluster.log("slurmd.log")))?;
        Ok(cluster)
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default()
    }

    /// Waits until the queue is empty.
    fn drain(&self) {
        wait_for(
            || {
                self.cmd("squeue")
                    .arg("-h")
                    .output()
                    .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
            },
            "the queue to empty",
        )
        .unwrap_or_else(|e| panic!("{e}\nslurmctld log:\n{}", self.log("slurmctld.log")));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in self.daemons.iter_mut().rev() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn wait_for(mut ready: impl FnMut() -> bool, what: &str) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("timed out waiting for {what}"))
}

const RUN_OPTIONS: [&str; 6] = [
    "--pca",
    "5",
    "--method",
    "kmeans:k=3",
    "--method",
    "ward:k=3",
];

/// What must hold after the array and the dependent job, however they ran.
fn check_results(work: &Path, single: &Path) {
    assert_eq!(
        std::fs::read(work.join("features.npy")).unwrap(),
        std::fs::read(single).unwrap(),
        "merged parts differ from one features process"
    );
    assert!(work.join("report/index.html").exists());
    assert_eq!(labels(&work.join("report/labels_kmeans.npy")).len(), 24);
}

#[test]
fn the_slurm_example_runs_on_a_one_node_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let images = w.join("images");
    copy_galaxies(&images, 24);
    let single = w.join("single.npy");
    ok(
        w,
        &[
            "--quiet",
            "features",
            "--images",
            images.to_str().unwrap(),
            "--out",
            single.to_str().unwrap(),
        ],
    );
    let bin = env!("CARGO_BIN_EXE_sdss-clustering");
    let work = w.join("work");

    let missing: Vec<&str> = [
        "munged",
        "mungekey",
        "slurmctld",
        "slurmd",
        "sbatch",
        "squeue",
    ]
    .into_iter()
    .filter(|p| !have(p))
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "\n*** SLURM IS NOT INSTALLED HERE (missing: {}): install Debian's slurm-wlm and munge \
             (.ci/run does) to run examples/slurm on a real cluster. Running the same scripts as \
             plain processes with the array variables SLURM would set. ***\n",
            missing.join(", ")
        );
        for task in 0..3 {
            output(
                Command::new("sh")
                    .arg(scripts().join("features.sbatch"))
                    .arg(&images)
                    .arg(work.join("parts"))
                    .env("SDSS_CLUSTERING", bin)
                    .env("SLURM_ARRAY_TASK_ID", task.to_string())
                    .env("SLURM_ARRAY_TASK_COUNT", "3")
                    .env("SLURM_ARRAY_TASK_MIN", "0"),
            );
        }
        output(
            Command::new("sh")
                .arg(scripts().join("cluster.sbatch"))
                .arg(&images)
                .arg(&work)
                .args(RUN_OPTIONS)
                .env("SDSS_CLUSTERING", bin),
        );
        check_results(&work, &single);
        return;
    }

    let cluster = Cluster::start(&w.join("slurm")).unwrap_or_else(|e| {
        panic!("slurm-wlm and munge are installed but the one-node cluster did not start: {e}")
    });
    let submit = |work: &Path| {
        output(
            cluster
                .cmd("sh")
                .arg(scripts().join("submit.sh"))
                .arg(&images)
                .arg(work)
                .arg("3")
                .args(RUN_OPTIONS)
                .env("SDSS_CLUSTERING", bin)
                .current_dir(w),
        )
    };
    let said = submit(&work);
    assert!(said.contains("job array"), "{said}");
    cluster.drain();
    let logs = |work: &Path| -> String {
        (0..3)
            .map(|i| {
                std::fs::read_to_string(work.join(format!("logs/features-{i}.out")))
                    .unwrap_or_default()
            })
            .collect()
    };
    let cluster_log = || std::fs::read_to_string(work.join("logs/cluster.out")).unwrap_or_default();
    assert!(
        work.join("report/index.html").exists(),
        "the dependent job made no report:\n{}\n{}",
        logs(&work),
        cluster_log()
    );
    check_results(&work, &single);
    assert!(!logs(&work).contains("skipped"), "{}", logs(&work));

    // Resubmitted: every shard is complete and is skipped; the report is rebuilt from the parts.
    std::fs::remove_dir_all(work.join("report")).unwrap();
    submit(&work);
    cluster.drain();
    assert_eq!(logs(&work).matches("skipped").count(), 3, "{}", logs(&work));
    check_results(&work, &single);

    // A shard cancelled between writing its part and its sidecar leaves nothing merge takes.
    let killed = w.join("killed");
    let job = output(
        cluster
            .cmd("sbatch")
            .args(["--parsable", "--array=0"])
            .arg(format!("--output={}/task-%a.out", w.display()))
            .arg(scripts().join("features.sbatch"))
            .arg(&images)
            .arg(&killed)
            .env("SDSS_CLUSTERING", bin)
            .env("SDSS_CLUSTERING_CRASH_AT", "features:part-written"),
    );
    let job = job.trim().to_owned();
    let task_log = w.join("task-0.out");
    wait_for(
        || std::fs::read_to_string(&task_log).is_ok_and(|t| t.contains("crash point")),
        "the shard to reach its crash point",
    )
    .unwrap();
    output(cluster.cmd("scancel").args(["--signal=KILL", &job]));
    cluster.drain();
    let names: Vec<String> = std::fs::read_dir(&killed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".json")),
        "a cancelled shard left a sidecar: {names:?}"
    );
    let err = fails(
        w,
        &[
            "merge",
            killed.to_str().unwrap(),
            "--out",
            w.join("m.npy").to_str().unwrap(),
        ],
    );
    assert!(err.contains("no features parts"), "{err}");
    drop(cluster);
}
