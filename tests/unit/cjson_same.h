/*
 * cjson_same: whether two cJSON trees are the same node for node, for the
 * tests that hold request_parse to cJSON (unit_request, fuzz_json).
 */
#ifndef CLIQHOST_TEST_CJSON_SAME_H
#define CLIQHOST_TEST_CJSON_SAME_H

#include "cliq/request.h"

#include <cjson/cJSON.h>
#include <string.h>

/* 1 when a and b are the same tree: types, keys, strings, numbers (bit
 * for bit), and the links (a head's prev is its tail, as cJSON leaves it).
 * request_parse's marks on numbers (REQUEST_NUMBER_*) are left out of the
 * types (unit_request checks them). */
static inline int cjson_same(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return a == b;
    const int marks = REQUEST_NUMBER_INTEGER | REQUEST_NUMBER_FLOAT;
    if ((a->type & ~marks) != (b->type & ~marks) || a->valueint != b->valueint ||
        memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0)
        return 0;
    if (!a->string != !b->string || (a->string && strcmp(a->string, b->string) != 0))
        return 0;
    if (!a->valuestring != !b->valuestring ||
        (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0))
        return 0;
    const cJSON *x = a->child, *y = b->child;
    if (x && y && (!x->prev || !y->prev || x->prev->next || y->prev->next))
        return 0; /* the head's prev must be a tail */
    for (; x && y; x = x->next, y = y->next)
        if (!cjson_same(x, y) || (x->next && x->next->prev != x))
            return 0;
    return !x && !y;
}

#endif
