/* libs: the list of bindings scripts see (see libs.h). */
#include "script/libs.h"

#include "script/bind_cliq.h"
#include "script/bind_http.h"
#include "script/bind_json.h"
#include "script/bind_log.h"
#include "script/bind_req.h"
#include "script/bind_store.h"
#include "script/vm.h"

#include <lua.h>

void libs_open(lua_State *L, struct luavm *vm, int sb)
{
    bind_json_open(L);
    lua_setfield(L, sb, "json");
    bind_log_open(L, &vm->logctx, sb);
    lua_setfield(L, sb, "log");
    bind_http_open(L, sb);
    bind_cliq_open(L);
    lua_setfield(L, sb, "cliq");
    bind_store_open(L, sb);
    lua_setfield(L, sb, "store");
    bind_req_open(L);
}
