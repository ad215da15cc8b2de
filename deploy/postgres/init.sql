-- Each service has a database of its own on the shared server.
CREATE DATABASE users;
CREATE DATABASE beers;
CREATE DATABASE orders;
