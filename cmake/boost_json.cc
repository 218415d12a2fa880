// Boost.JSON in its header-only form, compiled once here (the ficus_boost_json library) for
// every module that uses it; a second copy in another library would define its symbols twice.
#include <boost/json/src.hpp>
