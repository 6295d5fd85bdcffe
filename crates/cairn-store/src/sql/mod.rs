//! The store logic shared by both backends.

pub mod db;
