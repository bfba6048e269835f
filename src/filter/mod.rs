// PLACEHOLDER until the real filter engine lands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("display filter error at column {}: {message}", position + 1)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
    pub text: String,
}
#[derive(Debug, Clone)]
pub struct DisplayFilter;
impl DisplayFilter {
    pub fn parse(text: &str) -> Result<DisplayFilter, FilterError> {
        Err(FilterError {
            position: 0,
            message: "not yet".into(),
            text: text.into(),
        })
    }
    pub fn matches(&self, _src: &dyn FieldSource) -> bool {
        true
    }
}
pub trait FieldSource {}
