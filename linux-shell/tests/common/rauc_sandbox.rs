//! A real RAUC 1.8 on a private system-type bus: test PKI, file-backed ext4 slots, a custom
//! bootloader backend script with state files, and bundles made with `rauc bundle`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Guard, require_tool, run, wait_for};

pub struct RaucSandbox {
    pub dir: tempfile::TempDir,
    pub bus_address: String,
    pub slot_a: PathBuf,
    pub slot_b: PathBuf,
    /// A non-bootable application slot (`appfs.0`, no bootname): updated without a reboot.
    pub slot_app: PathBuf,
    pub bootloader_dir: PathBuf,
    /// RAUC's bootnames of `rootfs.0` and `rootfs.1` (`A`/`B` unless started otherwise).
    pub bootnames: [String; 2],
    // Dropped in reverse order: RAUC first, then the bus.
    rauc: Option<Guard>,
    _dbus: Guard,
}

const BUS_CONF: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>ADDRESS</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

impl RaucSandbox {
    pub fn start() -> Self {
        Self::start_with_bootnames(["A", "B"])
    }

    /// A sandbox whose system.conf names the slots `names[0]` (booted first) and `names[1]`.
    pub fn start_with_bootnames(names: [&str; 2]) -> Self {
        Self::start_with(names, "")
    }

    /// A sandbox for casync bundles: system.conf gets `[casync] storepath=<store_url>` and a
    /// `tmppath` on tmpfs (`/dev/shm`, removed with the sandbox).
    pub fn start_casync(store_url: &str) -> Self {
        Self::start_casync_with(store_url, "")
    }

    /// Like `start_casync`, with `extra` lines in the `[casync]` section (e.g. `install-args=…`).
    pub fn start_casync_with(store_url: &str, extra: &str) -> Self {
        require_tool("casync");
        let tmp = tempfile::Builder::new()
            .prefix("eyas-casync-")
            .tempdir_in("/dev/shm")
            .expect("tmpfs dir for casync");
        let sb = Self::start_with(
            ["A", "B"],
            &format!(
                "\n[casync]\nstorepath={store_url}\ntmppath={}\n{extra}",
                tmp.path().display()
            ),
        );
        // The tmpfs dir lives as long as the sandbox's own dir.
        let keep = sb.path().join("casync-tmp");
        std::fs::write(&keep, tmp.path().display().to_string()).expect("write");
        std::mem::forget(tmp);
        sb
    }

    /// A sandbox with `extra` appended to system.conf (whole sections).
    pub fn start_with(names: [&str; 2], extra: &str) -> Self {
        let [first, second] = names;
        for tool in [
            "rauc",
            "dbus-daemon",
            "dbus-send",
            "mkfs.ext4",
            "debugfs",
            "openssl",
            "mksquashfs",
        ] {
            require_tool(tool);
        }
        let dir = tempfile::Builder::new()
            .prefix("eyas-rauc-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        for sub in ["pki", "mnt", "data", "bl", "rootA/etc"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        make_rauc_pki(&d.join("pki"));
        std::fs::write(d.join("rootA/etc/sw-version"), "1.0.0\n").expect("write");
        let slot_a = d.join("slotA.img");
        let slot_b = d.join("slotB.img");
        mkfs(&d.join("rootA"), &slot_a);
        std::fs::File::create(&slot_b)
            .and_then(|f| f.set_len(8 << 20))
            .expect("slotB");
        let slot_app = d.join("appfs.img");
        std::fs::File::create(&slot_app)
            .and_then(|f| f.set_len(4 << 20))
            .expect("appfs");
        let bl = d.join("bl");
        let script = d.join("bootloader.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# RAUC custom bootloader backend for tests: one state file per item.\nd={bl}\necho \"$*\" >> $d/calls.log\n\
                 case \"$1\" in\n  get-primary) cat $d/primary 2>/dev/null || echo {first} ;;\n  set-primary) echo \"$2\" > $d/primary; echo good > $d/state.$2 ;;\n\
                 get-state) cat $d/state.$2 2>/dev/null || echo good ;;\n  set-state) echo \"$3\" > $d/state.$2 ;;\n\
                 get-current) cat $d/current 2>/dev/null || echo {first} ;;\n  *) echo \"unsupported: $*\" >&2; exit 1 ;;\nesac\n",
                bl = bl.display()
            ),
        )
        .expect("write script");
        run(Command::new("chmod").arg("+x").arg(&script));
        std::fs::write(
            d.join("system.conf"),
            format!(
                "[system]\ncompatible=ota-agent-test\nbootloader=custom\nmountprefix={d}/mnt\ndata-directory={d}/data\nbundle-formats=plain\n\n\
                 [handlers]\nbootloader-custom-backend={script}\n\n[keyring]\npath={d}/pki/ca.cert.pem\n\n\
                 [slot.rootfs.0]\ndevice={a}\ntype=ext4\nbootname={first}\n\n[slot.rootfs.1]\ndevice={b}\ntype=ext4\nbootname={second}\n\n\
                 [slot.appfs.0]\ndevice={app}\ntype=ext4\n{extra}",
                d = d.display(),
                script = script.display(),
                a = slot_a.display(),
                b = slot_b.display(),
                app = slot_app.display()
            ),
        )
        .expect("system.conf");
        let bus_address = format!("unix:path={}/sysbus.sock", d.display());
        std::fs::write(
            d.join("bus.conf"),
            BUS_CONF.replace("ADDRESS", &bus_address),
        )
        .expect("bus.conf");
        let dbus = Guard(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}/bus.conf", d.display()))
                .arg("--nofork")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dbus-daemon"),
        );
        let sock = d.join("sysbus.sock");
        wait_for("the private bus socket", Duration::from_secs(10), || {
            sock.exists()
        });
        let rauc = start_rauc(d, &bus_address, first);
        Self {
            dir,
            bus_address,
            slot_a,
            slot_b,
            slot_app,
            bootloader_dir: bl,
            bootnames: [first.to_owned(), second.to_owned()],
            rauc: Some(rauc),
            _dbus: dbus,
        }
    }

    /// Stops the RAUC service (the bus stays up).
    pub fn stop_rauc(&mut self) {
        self.rauc = None;
        let bus = self.bus_address.clone();
        wait_for("RAUC to leave the bus", Duration::from_secs(10), || {
            !rauc_on_bus(&bus)
        });
    }

    /// "Reboots" into `boot_slot`: restarts the RAUC service as if that slot had booted.
    pub fn reboot_into(&mut self, boot_slot: &str) {
        self.rauc = None;
        let bus = self.bus_address.clone();
        wait_for(
            "the old RAUC to leave the bus",
            Duration::from_secs(10),
            || !rauc_on_bus(&bus),
        );
        self.rauc = Some(start_rauc(self.dir.path(), &self.bus_address, boot_slot));
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A signed bundle whose rootfs image holds /etc/sw-version = `version`.
    pub fn bundle(&self, name: &str, version: &str, compatible: &str) -> PathBuf {
        self.bundle_with_filler(name, version, compatible, 0)
    }

    /// Like `bundle`, with `filler` bytes of incompressible data in the image (a bigger bundle).
    pub fn bundle_with_filler(
        &self,
        name: &str,
        version: &str,
        compatible: &str,
        filler: usize,
    ) -> PathBuf {
        self.bundle_for_class(name, version, compatible, "rootfs", filler)
    }

    /// A signed bundle for the application slot (`[image.appfs]`, /etc/sw-version = `version`).
    pub fn app_bundle(&self, name: &str, version: &str, compatible: &str) -> PathBuf {
        self.bundle_for_class(name, version, compatible, "appfs", 0)
    }

    fn bundle_for_class(
        &self,
        name: &str,
        version: &str,
        compatible: &str,
        class: &str,
        filler: usize,
    ) -> PathBuf {
        let d = self.path();
        let work = d.join(format!("work-{name}"));
        std::fs::create_dir_all(work.join("root/etc")).expect("mkdir");
        std::fs::create_dir_all(work.join("bundle")).expect("mkdir");
        std::fs::write(work.join("root/etc/sw-version"), format!("{version}\n")).expect("write");
        if filler > 0 {
            std::fs::write(work.join("root/filler.bin"), super::test_bytes(filler, 99))
                .expect("filler");
        }
        mkfs(
            &work.join("root"),
            &work.join(format!("bundle/{class}.ext4")),
        );
        std::fs::write(
            work.join("bundle/manifest.raucm"),
            format!("[update]\ncompatible={compatible}\nversion={version}\n\n[bundle]\nformat=plain\n\n[image.{class}]\nfilename={class}.ext4\n"),
        )
        .expect("manifest");
        let out = d.join(format!("{name}.raucb"));
        run(Command::new("rauc")
            .arg("bundle")
            .arg(format!("--cert={}/pki/dev.cert.pem", d.display()))
            .arg(format!("--key={}/pki/dev.key.pem", d.display()))
            .arg(format!("--keyring={}/pki/ca.cert.pem", d.display()))
            .arg(work.join("bundle"))
            .arg(&out));
        out
    }

    /// A signed plain bundle (compatible `ota-agent-test`) holding `image` as the rootfs.
    pub fn bundle_from_image(&self, name: &str, version: &str, image: &Path) -> PathBuf {
        let d = self.path();
        let work = d.join(format!("work-{name}/bundle"));
        std::fs::create_dir_all(&work).expect("mkdir");
        std::fs::copy(image, work.join("rootfs.ext4")).expect("copy image");
        std::fs::write(
            work.join("manifest.raucm"),
            format!("[update]\ncompatible=ota-agent-test\nversion={version}\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n"),
        )
        .expect("manifest");
        let out = d.join(format!("{name}.raucb"));
        run(Command::new("rauc")
            .arg("bundle")
            .args(self.signer())
            .arg(&work)
            .arg(&out));
        out
    }

    /// `rauc convert` of `plain` into the casync index bundle `out`, its chunks added to `store`
    /// (one shared store: casync takes the last `--store`).
    pub fn casync_convert(&self, plain: &Path, out: &Path, store: &Path) {
        require_tool("casync");
        run(Command::new("rauc")
            .arg("convert")
            .args(self.signer())
            .arg(format!("--casync-args=--store={}", store.display()))
            .arg(plain)
            .arg(out));
    }

    fn signer(&self) -> [String; 3] {
        let d = self.path().display();
        [
            format!("--cert={d}/pki/dev.cert.pem"),
            format!("--key={d}/pki/dev.key.pem"),
            format!("--keyring={d}/pki/ca.cert.pem"),
        ]
    }

    /// The version file inside a slot image, read with debugfs.
    pub fn slot_version(&self, image: &Path) -> String {
        let out = run(Command::new("debugfs")
            .arg("-R")
            .arg("cat /etc/sw-version")
            .arg(image));
        out.trim().to_owned()
    }

    pub fn bootloader_calls(&self) -> String {
        std::fs::read_to_string(self.bootloader_dir.join("calls.log")).unwrap_or_default()
    }

    /// The custom backend's state of `bootname` (`good` when never set, as the script answers).
    pub fn bootloader_state(&self, bootname: &str) -> String {
        std::fs::read_to_string(self.bootloader_dir.join(format!("state.{bootname}")))
            .map_or_else(|_| "good".to_owned(), |s| s.trim().to_owned())
    }

    /// The custom backend's primary bootname (the first slot's when never set, as the script
    /// answers).
    pub fn bootloader_primary(&self) -> String {
        std::fs::read_to_string(self.bootloader_dir.join("primary"))
            .map_or_else(|_| self.bootnames[0].clone(), |s| s.trim().to_owned())
    }

    pub fn rauc_log(&self) -> String {
        std::fs::read_to_string(self.path().join("rauc.log")).unwrap_or_default()
    }
}

impl Drop for RaucSandbox {
    fn drop(&mut self) {
        // The casync tmppath on /dev/shm (start_casync), after RAUC has stopped.
        self.rauc = None;
        if let Ok(tmp) = std::fs::read_to_string(self.path().join("casync-tmp")) {
            let _ = std::fs::remove_dir_all(tmp.trim());
        }
    }
}

/// A reproducible ext4 image of `root` (shared/reference/delta.md §2, as
/// `hil-tests/scripts/repro-ext4.sh`): fixed UUID and directory hash seed, `E2FSPROGS_FAKE_TIME`,
/// and every inode's times pinned with debugfs `sif`, so the same tree gives the same bytes and a
/// one-file change a few changed blocks.
pub fn mkfs_reproducible(root: &Path, image: &Path, size: &str) {
    const EPOCH: &str = "1700000000";
    run(Command::new("find").arg(root).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        &format!("@{EPOCH}"),
        "{}",
        "+",
    ]));
    run(Command::new("mkfs.ext4")
        .env("E2FSPROGS_FAKE_TIME", EPOCH)
        .args(["-q", "-F", "-b", "4096", "-L", "rootfs"])
        .args(["-U", "6b1c3a52-6f0e-4a43-9a8b-1d2e3f405162"])
        .args(["-E", "hash_seed=0d7a1f64-2b3c-4d5e-8f90-a1b2c3d4e5f6", "-d"])
        .arg(root)
        .arg(image)
        .arg(size));
    let mut paths = vec!["/".to_owned(), "/lost+found".to_owned()];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read tree").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("inside the tree");
            paths.push(format!("/{}", rel.display()));
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    paths.sort();
    let mut cmds = String::new();
    for p in &paths {
        for f in ["atime", "ctime", "mtime", "crtime"] {
            cmds.push_str(&format!("sif \"{p}\" {f} @{EPOCH}\n"));
        }
        for f in ["atime_extra", "ctime_extra", "mtime_extra", "crtime_extra"] {
            cmds.push_str(&format!("sif \"{p}\" {f} 0\n"));
        }
    }
    let file = image.with_extension("debugfs");
    std::fs::write(&file, cmds).expect("debugfs commands");
    run(Command::new("debugfs")
        .env("E2FSPROGS_FAKE_TIME", EPOCH)
        .arg("-w")
        .arg("-f")
        .arg(&file)
        .arg(image));
}

fn start_rauc(d: &Path, bus_address: &str, boot_slot: &str) -> Guard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("rauc.log"))
        .expect("log");
    let rauc = Guard(
        Command::new("rauc")
            .arg("service")
            .arg(format!("--conf={}/system.conf", d.display()))
            .arg(format!("--override-boot-slot={boot_slot}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus_address)
            .env_remove("DBUS_STARTER_BUS_TYPE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start rauc service"),
    );
    wait_for(
        "de.pengutronix.rauc on the private bus",
        Duration::from_secs(15),
        || rauc_on_bus(bus_address),
    );
    rauc
}

fn rauc_on_bus(bus_address: &str) -> bool {
    // dbus-send (package dbus-bin) rather than busctl, which needs systemd installed.
    Command::new("dbus-send")
        .args([
            "--system",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:de.pengutronix.rauc",
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus_address)
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("boolean true")
        })
}

fn mkfs(root: &Path, image: &Path) {
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "rootfs", "-d"])
        .arg(root)
        .arg(image)
        .arg("4M"));
}

fn make_rauc_pki(pki: &Path) {
    std::fs::write(
        pki.join("openssl.cnf"),
        "[ req ]\ndistinguished_name = dn\n[ dn ]\n[ v3_ca ]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n[ v3_leaf ]\nbasicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid,issuer\n",
    )
    .expect("openssl.cnf");
    let ossl = |args: &[&str]| {
        run(Command::new("openssl").args(args).current_dir(pki));
    };
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key.pem",
        "-out",
        "ca.cert.pem",
        "-days",
        "400",
        "-subj",
        "/O=Test/CN=Test RAUC CA",
        "-config",
        "openssl.cnf",
        "-extensions",
        "v3_ca",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "dev.key.pem",
        "-out",
        "dev.csr.pem",
        "-subj",
        "/O=Test/CN=Test RAUC signer",
        "-config",
        "openssl.cnf",
    ]);
    ossl(&[
        "x509",
        "-req",
        "-in",
        "dev.csr.pem",
        "-CA",
        "ca.cert.pem",
        "-CAkey",
        "ca.key.pem",
        "-CAcreateserial",
        "-out",
        "dev.cert.pem",
        "-days",
        "400",
        "-extfile",
        "openssl.cnf",
        "-extensions",
        "v3_leaf",
    ]);
}
