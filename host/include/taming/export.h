/* export.h — symbol visibility. The library is built with -fvisibility=hidden;
 * TT_API marks the public SDK, TT_PLUGIN_EXPORT the one symbol a plugin exports. */
#ifndef TAMING_EXPORT_H
#define TAMING_EXPORT_H

#if defined(__GNUC__)
#define TT_API __attribute__((visibility("default")))
#else
#define TT_API
#endif
#define TT_PLUGIN_EXPORT TT_API

#endif
