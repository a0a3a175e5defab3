//! The output formats of `rampart events` (`--format`).

/// Output format of `rampart events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Junos,
    JunosSd,
    Droplog,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Json,
        Format::Junos,
        Format::JunosSd,
        Format::Droplog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Junos => "junos",
            Format::JunosSd => "junos-sd",
            Format::Droplog => "droplog",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format {s:?} (json, junos, junos-sd, droplog)"))
    }
}
