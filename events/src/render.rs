//! The dispatcher over the renderers of decoded records, one module per
//! format: [`crate::json`], [`crate::junos`] (Junos standard RT_FLOW /
//! RT_SCREEN text), `junos-sd` in [`crate::syslog`] (RFC 5424 with Junos
//! structured data) and [`crate::droplog`] (one decoded line per dropped
//! packet). Their shared pieces are in `text` (a leaf); nothing imports
//! this module but the crate's users.
//!
//! Every renderer appends one line (no newline) to a `String` and returns
//! false when the format has nothing to say about the record (e.g. `junos`
//! for a stats record). Renderers never panic on any decoded record, whatever
//! its ids or snippet.

use crate::decode::{NameCache, Record};
pub use crate::droplog::{write_droplog, write_snippet_fields};
pub use crate::format::Format;
pub use crate::json::write_json;
pub use crate::junos::protocol_name;
pub use crate::text::{json_str, write_rfc3339};

/// Renders `rec` in `format` (for `junos-sd` with the local host name and
/// default facility; see [`crate::syslog::write_junos_sd`] for options).
pub fn render(format: Format, rec: &Record<'_>, names: &NameCache, out: &mut String) -> bool {
    match format {
        Format::Json => {
            write_json(rec, names, out);
            true
        }
        Format::Junos => write_junos(rec, names, out),
        Format::JunosSd => {
            crate::syslog::write_junos_sd(rec, names, crate::syslog::default_options(), out)
        }
        Format::Droplog => write_droplog(rec, names, out),
    }
}

/// `junos` format (see [`crate::junos::write_record`]).
pub fn write_junos(rec: &Record<'_>, cache: &NameCache, out: &mut String) -> bool {
    crate::junos::write_record(rec, cache, out)
}
