//! Back office directory items: advertisers, partners, categories, placements, age ranges, genders.
