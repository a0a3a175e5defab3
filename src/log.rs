//! The daemon's own log: control-path messages on stderr, one line each,
//! prefixed with the sd-daemon(3) priority (`<3>` error ... `<7>` debug)
//! that journald reads as the level (and a syslog forwarder can map); on a
//! terminal the prefix is left out. The data path never logs.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
#[repr(u8)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn write(level: Level, message: std::fmt::Arguments<'_>) {
    if level as u8 > MAX_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let stderr = std::io::stderr();
    if stderr.is_terminal() {
        eprintln!("rampart: {message}");
    } else {
        eprintln!("<{}>rampart: {message}", level as u8);
    }
}

macro_rules! error { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($arg)*)) } }
macro_rules! warning { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warning, format_args!($($arg)*)) } }
macro_rules! notice { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Notice, format_args!($($arg)*)) } }
macro_rules! info { ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($arg)*)) } }
pub(crate) use {error, info, notice, warning};
