//! This process's resource use for the `process_*` metrics, read from `/proc` as
//! Prometheus's Go process collector does. None in simulation (the simulated members share
//! one process) or where `/proc` is missing.

/// What the `process_*` metrics show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

/// Linux reports times in `/proc/<pid>/stat` in USER_HZ, which is 100 on every platform.
const TICKS_PER_SECOND: f64 = 100.0;

#[cfg(not(madsim))]
pub fn stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot_time_seconds = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    parse(&stat, &status, &limits, boot_time_seconds, open_fds)
}

#[cfg(madsim)]
pub fn stats() -> Option<ProcessStats> {
    None
}

/// Reads the fields from the text of `/proc/self/stat`, `status` and `limits`.
pub fn parse(
    stat: &str,
    status: &str,
    limits: &str,
    boot_time_seconds: f64,
    open_fds: u64,
) -> Option<ProcessStats> {
    // The command name (field 2) is in parentheses and may hold spaces: fields count from
    // after its closing parenthesis, where field 3 (state) is the first.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |number: usize| -> Option<f64> { fields.get(number - 3)?.parse().ok() };
    let cpu_ticks = field(14)? + field(15)?;
    let start_ticks = field(22)?;
    let virtual_memory_bytes = field(23)? as u64;
    let resident_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let max_fds = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok());
    Some(ProcessStats {
        cpu_seconds: cpu_ticks / TICKS_PER_SECOND,
        resident_memory_bytes: resident_kib * 1024,
        virtual_memory_bytes,
        open_fds,
        max_fds,
        start_time_seconds: boot_time_seconds + start_ticks / TICKS_PER_SECOND,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_procfs_text_with_spaces_in_the_command_name() {
        let stat = "4242 (cairn (x) y) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 \
                    9 0 123400 987654321 2000 18446744073709551615";
        let status = "Name:\tcairn\nVmRSS:\t   8192 kB\nThreads:\t9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let stats = parse(stat, status, limits, 1_700_000_000.0, 17).unwrap();
        assert_eq!(stats.cpu_seconds, 3.0);
        assert_eq!(stats.resident_memory_bytes, 8192 * 1024);
        assert_eq!(stats.virtual_memory_bytes, 987_654_321);
        assert_eq!(stats.max_fds, Some(1024));
        assert_eq!(stats.open_fds, 17);
        assert_eq!(stats.start_time_seconds, 1_700_000_000.0 + 1234.0);
    }

    #[test]
    fn a_truncated_stat_is_none_not_a_panic() {
        assert_eq!(parse("1 (x) S 1 2", "VmRSS: 1 kB", "", 0.0, 0), None);
    }

    #[cfg(not(madsim))]
    #[test]
    fn this_process_has_stats() {
        let stats = stats().expect("/proc is readable on Linux");
        assert!(stats.resident_memory_bytes > 0 && stats.open_fds > 0);
    }
}
