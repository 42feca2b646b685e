/*
 * segment_of_support.c — planner support for segment_of(c).
 *
 * `segment_of(c) FROM customers c` passes a whole-row value: PostgreSQL
 * builds a composite datum for every row (on 1M rows that alone costs as
 * much as the scoring).  When the argument is the whole row of a relation in
 * the query, this support function rewrites the call into
 * segment_of_columns[_named|_model](row type, [model,] col1, col2, ...), which
 * reads the columns as plain arguments.  It does nothing when the row could
 * be NULL as a whole (the nullable side of an outer join, or a Var of an
 * outer query): segment_of of a NULL row is NULL, while its columns one by
 * one would be scored as NULLs.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "nodes/supportnodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/typcache.h"

/* Arguments a function may take (FUNC_MAX_ARGS), less the row type and model. */
#define SEG_MAX_ROW_COLUMNS (FUNC_MAX_ARGS - 2)

/*
 * Is range table entry varno on the nullable side of an outer join in the
 * join tree (or absent from it)?
 */
static bool
find_rel(Node *jt, int varno, bool nullable, bool *found)
{
	if (jt == NULL)
		return false;
	if (IsA(jt, RangeTblRef))
	{
		if (((RangeTblRef *) jt)->rtindex == varno)
		{
			*found = true;
			return nullable;
		}
		return false;
	}
	if (IsA(jt, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jt)->fromlist)
		{
			bool		r = find_rel(lfirst(lc), varno, nullable, found);

			if (*found)
				return r;
		}
		return false;
	}
	if (IsA(jt, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jt;
		bool		left_null = nullable || j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL;
		bool		right_null = nullable || j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL;
		bool		r = find_rel(j->larg, varno, left_null, found);

		if (*found)
			return r;
		return find_rel(j->rarg, varno, right_null, found);
	}
	return false;
}

static bool
row_may_be_null(PlannerInfo *root, int varno)
{
	bool		found = false;
	bool		nullable;

	if (root == NULL || root->parse == NULL)
		return true;
	nullable = find_rel((Node *) root->parse->jointree, varno, false, &found);
	return nullable || !found;
}

static Oid
target_function(const char *signature)
{
	Oid			f = DatumGetObjectId(DirectFunctionCall1(to_regprocedure,
														 CStringGetTextDatum(signature)));

	return f;					/* InvalidOid when missing: then no rewrite */
}

PG_FUNCTION_INFO_V1(seg_segment_of_support);
Datum
seg_segment_of_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSimplify *req;
	FuncExpr   *fe;
	Var		   *row;
	TupleDesc	td;
	List	   *args = NIL;
	Oid			target;
	int			ncols = 0;

	if (!IsA(rawreq, SupportRequestSimplify))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestSimplify *) rawreq;
	fe = req->fcall;
	if (list_length(fe->args) < 1 || !IsA(linitial(fe->args), Var))
		PG_RETURN_POINTER(NULL);
	row = (Var *) linitial(fe->args);
	if (row->varattno != InvalidAttrNumber || row->varlevelsup != 0 ||
		row->vartype == RECORDOID || !type_is_rowtype(row->vartype) ||
		row_may_be_null(req->root, row->varno))
		PG_RETURN_POINTER(NULL);

	if (list_length(fe->args) == 1)
		target = target_function("segment.segment_of_columns(regtype, \"any\")");
	else if (exprType(lsecond(fe->args)) == TEXTOID)
		target = target_function("segment.segment_of_columns_named(regtype, text, \"any\")");
	else
		target = target_function("segment.segment_of_columns_model(regtype, segment.model, \"any\")");
	if (!OidIsValid(target))
		PG_RETURN_POINTER(NULL);

	args = lappend(args, makeConst(REGTYPEOID, -1, InvalidOid, sizeof(Oid),
								   ObjectIdGetDatum(row->vartype), false, true));
	if (list_length(fe->args) == 2)
		args = lappend(args, lsecond(fe->args));
	td = lookup_rowtype_tupdesc(row->vartype, -1);
	for (int a = 0; a < td->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(td, a);

		if (att->attisdropped)
			continue;
		args = lappend(args, makeVar(row->varno, att->attnum, att->atttypid, att->atttypmod,
									 att->attcollation, 0));
		ncols++;
	}
	ReleaseTupleDesc(td);
	if (ncols == 0 || ncols > SEG_MAX_ROW_COLUMNS)
		PG_RETURN_POINTER(NULL);	/* too wide for separate arguments: keep the row */

	PG_RETURN_POINTER(makeFuncExpr(target, INT4OID, args, InvalidOid, InvalidOid,
								   COERCE_EXPLICIT_CALL));
}
