//! Evaluation: trajectory error (ATE/RPE with Umeyama alignment), image metrics, timing.
