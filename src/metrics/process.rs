//! Process metrics read from `/proc/self` at scrape time (prometheus-client has no process
//! collector): CPU time, resident memory, open and allowed file descriptors, start time.
//! Linux only; on a failed read the metric is left out rather than reported as zero.

/// What `/proc/self` says now.
#[derive(Debug, Default)]
pub(super) struct Process {
    pub(super) cpu_seconds: Option<f64>,
    pub(super) resident_bytes: Option<u64>,
    pub(super) open_fds: Option<u64>,
    pub(super) max_fds: Option<u64>,
    pub(super) start_time_seconds: Option<u64>,
}

/// `/proc` counts CPU time and start time in USER_HZ, which is 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

impl Process {
    pub(super) fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .as_deref()
            .and_then(|s| s.rsplit_once(')'))
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // stat(5): utime is field 14, stime 15, starttime 22; `fields[0]` is field 3.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let cpu_seconds = field(14)
            .zip(field(15))
            .map(|(u, s)| (u + s) as f64 / TICKS_PER_SECOND);
        let start_time_seconds = field(22)
            .zip(boot_time())
            .map(|(ticks, boot)| boot + (ticks as f64 / TICKS_PER_SECOND) as u64);
        Self {
            cpu_seconds,
            resident_bytes: resident_bytes(),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft),
            start_time_seconds,
        }
    }
}

/// VmRSS from `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `btime` from `/proc/stat`: the boot time in Unix seconds.
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::Process::read();
        assert!(p.resident_bytes.is_some_and(|b| b > 0));
        assert!(p.open_fds.is_some_and(|n| n >= 3));
        assert!(p.cpu_seconds.is_some());
        let start = p.start_time_seconds.expect("start time");
        assert!(start <= crate::clock::unix_now() && start > 1_500_000_000);
    }
}
