//! Call detail records: one JSON object per line in `<data_dir>/calls.jsonl`,
//! appended when a call ends and made durable before anyone is told.

mod store;

pub use store::{CdrError, CdrStore, RECORDS_FILE};
