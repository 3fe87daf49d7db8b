"""The read side in Elasticsearch and MongoDB: projections of the documents topics.

A projection copies one documents topic (orders.documents, products.documents: the latest
document of each order or product, with its version) into one store:

| projection          | source             | store         | target                         |
|---------------------|--------------------|---------------|--------------------------------|
| orders-search       | orders.documents   | Elasticsearch | alias ``<app>-orders``         |
| products-search     | products.documents | Elasticsearch | alias ``<app>-products``       |
| orders-documents    | orders.documents   | MongoDB       | collection named by a pointer  |
| products-documents  | products.documents | MongoDB       | collection named by a pointer  |

Writes are idempotent and order-safe: a document carries the version of the last event applied
and a store never lets an older or equal version replace a newer one (external versioning in
Elasticsearch, a version-conditional update in MongoDB). So a replay, a redelivery after a
crash, or two workers writing during a rebalance can repeat writes but never go back in time.
A rebuild (orderflow.projections.rebuild) fills a new index or collection from the start of the
source topic and then moves the alias or pointer to it, while readers keep reading the old one.
"""

from orderflow.projections.registry import PROJECTIONS, Projection, projection

__all__ = ["PROJECTIONS", "Projection", "projection"]
