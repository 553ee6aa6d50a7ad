"""Episode shards and the (context, target, actions) training windows cut from them."""
