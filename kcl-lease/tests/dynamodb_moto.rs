//! DynamoStore against moto_server (tests to come).
