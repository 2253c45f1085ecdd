//! The image every container of a docker cluster runs: built `FROM scratch` out of files on
//! this machine, so nothing is pulled from a registry.
//!
//! Owns choosing the files (the running `certzone`, `kdig` for the checks, `busybox` for a
//! shell, `pebble` for the test CA, and the shared libraries each loads, found with `ldd`),
//! naming the image by their contents, and building it when no image of that name exists.
//! It must not start containers.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::Command,
};

use super::engine::{self, Engine, QUICK, SLOW};

/// The repository the built images are tagged in; the tag is a digest of their files.
pub(super) const REPOSITORY: &str = "certzone-cluster";

const DOCKERFILE: &str = "\
# Written by `certzone cluster docker up`: the files are copied from the machine it ran on.
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
LABEL org.certzone.image=cluster
";

/// A program the image needs, where it is found, and the Debian package that has it.
struct Program {
    name: &'static str,
    package: &'static str,
    why: &'static str,
}

const PROGRAMS: [Program; 3] = [
    Program {
        name: "kdig",
        package: "knot-dnsutils",
        why: "the client's checks and the nodes' healthchecks",
    },
    Program {
        name: "busybox",
        package: "busybox-static",
        why: "a shell for the healthchecks and the client's query loop",
    },
    Program {
        name: "pebble",
        package: "pebble",
        why: "the test CA ([docker] test-ca)",
    },
];

/// What goes into the image: path inside it -> file on this machine.
pub(super) struct Contents {
    files: BTreeMap<PathBuf, PathBuf>,
    applets: Vec<String>,
}

/// Finds every file the image needs; the message names a missing program and its package.
pub(super) fn contents(test_ca: bool) -> Result<Contents, String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("failed to find the running certzone binary: {e}"))?;
    let mut programs = vec![(String::from("certzone"), exe)];
    for program in PROGRAMS.iter().filter(|p| test_ca || p.name != "pebble") {
        let path = engine::find_program(program.name).ok_or_else(|| {
            format!(
                "`{}` is not installed (needed for {}): install the Debian package {}, or \
                 name an image of your own in [docker] image",
                program.name, program.why, program.package
            )
        })?;
        programs.push((program.name.to_string(), path));
    }
    let mut files = BTreeMap::new();
    for (name, path) in &programs {
        files.insert(Path::new("bin").join(name), path.clone());
        for library in libraries(path)? {
            let inside = library.strip_prefix("/").unwrap_or(&library).to_path_buf();
            files.insert(inside, library);
        }
    }
    // busybox is one of PROGRAMS, found above or refused.
    let busybox = &programs
        .iter()
        .find(|(n, _)| n == "busybox")
        .expect("listed above")
        .1;
    let applets = applets(busybox)?
        .into_iter()
        .filter(|a| !programs.iter().any(|(n, _)| n == a))
        .collect();
    Ok(Contents { files, applets })
}

/// The shared libraries `ldd` says `program` loads, the loader included; none when static.
fn libraries(program: &Path) -> Result<Vec<PathBuf>, String> {
    let mut command = Command::new("ldd");
    command.arg(program);
    let output = engine::run(command, QUICK)
        .map_err(|e| format!("failed to list the libraries of {}: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // "not a dynamic executable": a static program needs nothing beside it.
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let path = match fields.as_slice() {
            [_, "=>", path, ..] if path.starts_with('/') => path,
            [path, _] if path.starts_with('/') => path,
            _ => continue,
        };
        found.push(PathBuf::from(path));
    }
    Ok(found)
}

/// The applets busybox offers (sh, sleep, grep, ...), linked in /bin as on a busybox system.
fn applets(busybox: &Path) -> Result<Vec<String>, String> {
    let mut command = Command::new(busybox);
    command.arg("--list");
    let output = engine::run(command, QUICK)
        .map_err(|e| format!("failed to list busybox's applets: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .map(String::from)
        .collect())
}

impl Contents {
    /// `certzone-cluster:<digest>`: the same files give the same name, so an image built
    /// once is used again, by every cluster that needs those files.
    pub(super) fn tag(&self) -> Result<String, String> {
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        digest.update(DOCKERFILE.as_bytes());
        for (inside, source) in &self.files {
            digest.update(inside.as_os_str().as_encoded_bytes());
            let mut file = std::fs::File::open(source)
                .map_err(|e| format!("failed to read {}: {e}", source.display()))?;
            let mut buffer = vec![0; 1 << 16];
            loop {
                let n = file
                    .read(&mut buffer)
                    .map_err(|e| format!("failed to read {}: {e}", source.display()))?;
                if n == 0 {
                    break;
                }
                digest.update(&buffer[..n]);
            }
        }
        for applet in &self.applets {
            digest.update(applet.as_bytes());
        }
        let hex: String = digest.finish().as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(format!("{REPOSITORY}:{hex}"))
    }
}

/// Builds the image `tag` in `dir` (a scratch build context, removed afterwards) unless
/// the engine has it already. Returns whether it built.
pub(super) fn ensure(
    engine: &Engine,
    contents: &Contents,
    tag: &str,
    dir: &Path,
) -> Result<bool, String> {
    let known = engine.docker_output(&["image", "inspect", "--format", "{{.Id}}", tag], QUICK);
    if known.is_ok_and(|o| o.status.success()) {
        return Ok(false);
    }
    let _ = std::fs::remove_dir_all(dir);
    let result = assemble(contents, dir).and_then(|()| {
        let context = dir.to_string_lossy();
        engine
            .docker(&["build", "--quiet", "--tag", tag, &context], SLOW)
            .map_err(|e| format!("failed to build image {tag}: {e}"))
    });
    let _ = std::fs::remove_dir_all(dir);
    result?;
    prune(engine, tag);
    Ok(true)
}

/// Removes the images earlier binaries were built into, so rebuilds do not pile up; the
/// engine refuses to remove one a container still uses, and that one stays.
fn prune(engine: &Engine, keep: &str) {
    let Ok(listed) = engine.docker(
        &["images", REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"],
        QUICK,
    ) else {
        return;
    };
    for image in listed.lines().filter(|i| !i.is_empty() && *i != keep) {
        let _ = engine.docker_output(&["rmi", image], QUICK);
    }
}

/// The build context: the Dockerfile and rootfs/ with every file at its path.
fn assemble(contents: &Contents, dir: &Path) -> Result<(), String> {
    let rootfs = dir.join("rootfs");
    let io = |what: &str, path: &Path, e: std::io::Error| {
        format!("failed to {what} {}: {e}", path.display())
    };
    for sub in ["bin", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).map_err(|e| io("create", &rootfs, e))?;
    }
    for (inside, source) in &contents.files {
        let target = rootfs.join(inside);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("create", parent, e))?;
        }
        // Follows links: the library's contents under the name the loader asks for.
        std::fs::copy(source, &target).map_err(|e| io("copy", source, e))?;
    }
    for applet in &contents.applets {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link).map_err(|e| io("link", &link, e))?;
        }
    }
    let dockerfile = dir.join("Dockerfile");
    std::fs::write(&dockerfile, DOCKERFILE).map_err(|e| io("write", &dockerfile, e))
}
