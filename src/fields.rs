// PLACEHOLDER
use crate::pipeline::FrameRecord;
pub struct FrameFields<'r, 'a> {
    pub rec: &'r FrameRecord<'a>,
}
impl<'r, 'a> FrameFields<'r, 'a> {
    pub fn new(rec: &'r FrameRecord<'a>) -> Self {
        FrameFields { rec }
    }
}
impl crate::filter::FieldSource for FrameFields<'_, '_> {}
