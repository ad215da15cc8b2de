-- Each service has a database of its own on the shared server, in UTF-8
-- whatever the server's own default (names like Загорка are stored as text).
CREATE DATABASE users ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE beers ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE orders ENCODING 'UTF8' TEMPLATE template0;
