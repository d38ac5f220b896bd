"""Key management: the master key, the data keys it wraps, AES-256-GCM and blind indexes.

    master key (PAYGRID_MASTER_KEY, 32 bytes; never stored in the database)
      └── wraps data keys (random 32 bytes each, `data_keys`), one per purpose and customer,
          or shared with no customer (the keys of blind indexes)
            └── encrypt rows' sensitive columns, each ciphertext bound to its table, column
                and row by its associated data

Rotating the master key re-wraps the data keys and re-encrypts nothing. A per-customer key
protects only that customer's data, so destroying it is crypto-shredding.
"""
