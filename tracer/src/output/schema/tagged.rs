//! Objects nested in a line that carry their own `"type"` (the `counters` and the `drop_stats`
//! of a watch summary), for `#[serde(with = ...)]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A type printed as an object with a `"type"` key in front of its fields.
pub trait Tagged {
    const TYPE: &'static str;
}

#[derive(Serialize)]
struct Out<'a, T> {
    r#type: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct In<T> {
    r#type: String,
    #[serde(flatten)]
    body: T,
}

fn check<T: Tagged, E: serde::de::Error>(tagged: In<T>) -> Result<T, E> {
    if tagged.r#type == T::TYPE {
        Ok(tagged.body)
    } else {
        Err(E::custom(format!(
            "expected a {:?} object, found type {:?}",
            T::TYPE,
            tagged.r#type
        )))
    }
}

/// A list of tagged objects.
pub mod list {
    use super::{Deserialize, Deserializer, In, Out, Serialize, Serializer, Tagged, check};

    pub fn serialize<S: Serializer, T: Tagged + Serialize>(
        items: &[T],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(items.iter().map(|body| Out {
            r#type: T::TYPE,
            body,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Tagged + Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Vec::<In<T>>::deserialize(d)?
            .into_iter()
            .map(check)
            .collect()
    }
}

/// An optional tagged object.
pub mod option {
    use super::{Deserialize, Deserializer, In, Out, Serialize, Serializer, Tagged, check};

    #[allow(
        clippy::ref_option,
        reason = "`#[serde(with)]` calls this with a reference to the field, an `Option<T>`"
    )]
    pub fn serialize<S: Serializer, T: Tagged + Serialize>(
        item: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        item.as_ref()
            .map(|body| Out {
                r#type: T::TYPE,
                body,
            })
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Tagged + Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<In<T>>::deserialize(d)?.map(check).transpose()
    }
}
