"""Products API: the banks' cached catalogues and the user's agreements."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from banking.selectors.products import agreement_list, product_list
from banking.serializers.common import ErrorOutputSerializer
from banking.serializers.products import ProductListOutputSerializer, ProductListParamsSerializer


class ProductListApi(APIView):
    @extend_schema(
        operation_id="products_list",
        parameters=[ProductListParamsSerializer],
        responses={
            200: ProductListOutputSerializer,
            400: OpenApiResponse(ErrorOutputSerializer, description="A parameter is not valid."),
        },
        summary="The banks' product catalogues (cached) and your product agreements",
        description=(
            "Catalogues are cached and refreshed from the banks at most every few hours; "
            "agreements are yours only, with the next payment FinTrack computed."
        ),
        tags=["products"],
    )
    def get(self, request):
        params_serializer = ProductListParamsSerializer(data=request.query_params)
        params_serializer.is_valid(raise_exception=True)
        bank_code = params_serializer.validated_data.get("bank_code")
        product_type = params_serializer.validated_data.get("product_type")
        data = {
            "catalogue": product_list(bank_code=bank_code, product_type=product_type),
            "agreements": agreement_list(
                user=request.user, bank_code=bank_code, product_type=product_type
            ),
        }
        return Response(ProductListOutputSerializer(data).data)
