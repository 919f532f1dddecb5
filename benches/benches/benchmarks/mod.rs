pub mod encoding;
pub mod hooks;
pub mod python;
pub mod stacks;
