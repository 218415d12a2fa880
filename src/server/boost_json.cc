// Boost.JSON in header-only form, compiled once here for the whole server module.
#include <boost/json/src.hpp>
