//! The recorder: a watch on retried runs that records how each attempt ended.
