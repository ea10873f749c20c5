//! Pricing and cost. (Being written.)
